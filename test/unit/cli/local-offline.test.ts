import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  functionPrefix,
  OfflineProcess,
  routeCollector,
  serverlessBin,
} from '../../../src/cli/local-offline.js';

const DIR = mkdtempSync(path.join(tmpdir(), 'sc-offline-unit-'));

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe('functionPrefix', () => {
  it.each([
    ['service: my-svc\n', 'my-svc-dev-'],
    ["service: 'quoted-svc' # the demo\n", 'quoted-svc-dev-'],
    ['frameworkVersion: "4"\nservice:\n  name: v1-svc\n', 'v1-svc-dev-'],
  ])('reads %j as %s', (text, prefix) => {
    // Prepare
    writeFileSync(path.join(DIR, 'serverless.yml'), text);

    // Act, Assess
    expect(functionPrefix(DIR, 'dev')).toBe(prefix);
  });

  it('refuses a service name that is not written out', () => {
    // Prepare
    writeFileSync(path.join(DIR, 'computed.yml'), 'service: !Ref ServiceName\n');

    // Act, Assess
    expect(() => functionPrefix(DIR, 'dev', 'computed.yml')).toThrow(
      `no literal "service:" name in ${path.join(DIR, 'computed.yml')}`,
    );
  });
});

describe('routeCollector', () => {
  it('keeps the routes of the box serverless-offline prints, a wrapped one included', () => {
    // Prepare
    const collector = routeCollector();
    const lines = [
      'Offline [http for lambda] listening on http://127.0.0.1:3002',
      '┌──────────────────────────────────────────────────┐',
      '│                                                  │',
      '│   POST | http://127.0.0.1:3000/events            │',
      '│   POST |                                         │',
      '│   http://127.0.0.1:3000/2015-03-31/functions/events-api/invocations │',
      '│   ANY  |                                         │',
      '│   http://127.0.0.1:3000/a/very/long/path/{proxy*} │',
      '│   GET  | http://127.0.0.1:3000/events/{id}       │',
      '│                                                  │',
      '└──────────────────────────────────────────────────┘',
      'Server ready: http://127.0.0.1:3000 🚀',
    ];

    // Act
    for (const line of lines) collector.add(line);

    // Assess
    expect(collector.routes()).toEqual([
      { method: 'POST', url: 'http://127.0.0.1:3000/events' },
      { method: 'ANY', url: 'http://127.0.0.1:3000/a/very/long/path/{proxy*}' },
      { method: 'GET', url: 'http://127.0.0.1:3000/events/{id}' },
    ]);
  });
});

describe('serverlessBin', () => {
  it('falls back to the osls installed next to this package when the service has none', () => {
    expect(serverlessBin(DIR)).toMatch(/node_modules[/\\]osls[/\\]bin[/\\]serverless\.js$/);
  });
});

describe('OfflineProcess', () => {
  it('says to list serverless-offline when the framework has no offline command', async () => {
    // Prepare: a service whose framework answers as osls does without the plugin.
    const service = mkdtempSync(path.join(tmpdir(), 'sc-offline-missing-'));
    const fake = path.join(service, 'node_modules', 'osls');
    mkdirSync(path.join(fake, 'bin'), { recursive: true });
    writeFileSync(
      path.join(fake, 'package.json'),
      JSON.stringify({ name: 'osls', bin: { serverless: 'bin/serverless.js' } }),
    );
    writeFileSync(
      path.join(fake, 'bin', 'serverless.js'),
      'console.error(\'Error:\\nosls command "offline start" not found. Run "serverless help" for a list of all available commands.\');\nprocess.exit(1);\n',
    );
    const lines: string[] = [];

    // Act
    const offline = OfflineProcess.start({
      cwd: service,
      stage: 'dev',
      host: '127.0.0.1',
      httpPort: 1,
      lambdaPort: 1,
      params: {},
      onLine: (line) => lines.push(line),
    });
    const failure = await offline.waitReady(10_000).catch((error: unknown) => error);
    rmSync(service, { recursive: true, force: true });

    // Assess
    expect(lines.join('\n')).toContain('command "offline start" not found');
    expect((failure as Error).message).toBe(
      'serverless-offline exited (code 1) before it was ready: it is not among the plugins of the service (add `- serverless-offline` under `plugins` in its serverless.yml, and `npm i -D serverless-offline`)',
    );
  });
});

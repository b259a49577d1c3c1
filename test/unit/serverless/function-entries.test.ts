import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import { parseCeleryConfig } from '../../../src/serverless/celery-config.js';
import type { PlannedFunction } from '../../../src/serverless/function-definitions.js';
import {
  ENTRY_DIR,
  entryHandler,
  entrySource,
  writeEntries,
} from '../../../src/serverless/function-entries.js';
import type { AppModule } from '../../../src/serverless/load-app-module.js';
import { planFunctions } from '../../../src/serverless/plan-functions.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const registry = createRegistry({
  tasks: [
    defineTask({ name: 'reports.send', queue: 'reports' }, async () => null),
    defineTask({ name: 'reports.purge', queue: 'reports', cron: '0 3 * * *' }, async () => null),
    defineTask({ name: 'reports.charge', queue: 'reports', atMostOnce: true }, async () => null),
  ],
  queues: [{ name: 'reports' }],
});

/** The app at `<serviceDir>/src/app.ts`, exporting what `exports` says. */
function makeApp(serviceDir: string, exports: 'registry' | 'registry+runtime'): AppModule {
  return {
    file: path.join(serviceDir, 'src', 'app.ts'),
    registry,
    registryExport: 'registry',
    exportsRuntime: exports === 'registry+runtime',
  };
}

function planned(broker: 'redis' | 'rabbitmq' = 'redis'): PlannedFunction[] {
  const config = parseCeleryConfig({ app: './src/app.ts', broker: { kind: broker } });
  return [...planFunctions(registry, config, { service: 's', stage: 'dev' }).functions];
}

function source(key: string, app: AppModule, serviceDir = ROOT): string {
  const fn = [...planned('redis'), ...planned('rabbitmq')].find((f) => f.key === key);
  if (!fn) throw new Error(`no function ${key}`);
  return entrySource(fn, app, serviceDir);
}

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('entrySource', () => {
  it('builds a task function from the registry alone, so its bundle carries no broker', () => {
    // Act
    const text = source('task-reports-send', makeApp(ROOT, 'registry+runtime'));

    // Assess
    expect(text.split('\n').slice(1)).toEqual([
      'import { registry } from "../src/app.ts";',
      'import { createTaskHandler } from "../src/lambda/task-handler.ts";',
      '',
      'export const handler = createTaskHandler(registry, "reports.send");',
      '',
    ]);
  });

  it('gives an atMostOnce task its once store: ONCE_STORE_URL, else the broker', () => {
    // Act
    const text = source('task-reports-charge', makeApp(ROOT, 'registry'));

    // Assess
    expect(text).toContain('import { onceStoreAt } from "../src/brokers/once-store-at.ts";');
    expect(text).toContain(
      'export const handler = createTaskHandler(registry, "reports.charge", { store: onceStoreAt(process.env.ONCE_STORE_URL || process.env.BROKER_URL || "redis://127.0.0.1:6379/0") });',
    );
  });

  it.each([
    ['poller', 'createPollerHandler', 'poller-handler', ''],
    ['dispatcher', 'createAmazonMqDispatcher', 'amazon-mq-dispatcher', ''],
    ['producer-http', 'createHttpProducerHandler', 'producer-handlers', ''],
    ['producer-invoke', 'createInvokeProducerHandler', 'producer-handlers', ''],
    ['cron-reports-purge', 'createCronHandler', 'cron-handler', ', "reports.purge"'],
  ])('builds %s with the app’s runtime when it exports one', (key, factory, module, task) => {
    // Act
    const text = source(key, makeApp(ROOT, 'registry+runtime'));

    // Assess
    expect(text).toContain('import { runtime } from "../src/app.ts";');
    expect(text).toContain(`import { ${factory} } from "../src/lambda/${module}.ts";`);
    expect(text).toContain(`export const handler = ${factory}(runtime${task});`);
  });

  it('builds the HTTP producer with the result route when the app opts in', () => {
    // Prepare
    const config = parseCeleryConfig({
      app: './src/app.ts',
      resultBackend: 'redis://results:6379/1',
      producers: { http: { results: true } },
    });
    const http = planFunctions(registry, config, { service: 's', stage: 'dev' }).functions.find(
      (fn) => fn.key === 'producer-http',
    );

    // Act
    const text = entrySource(http as PlannedFunction, makeApp(ROOT, 'registry+runtime'), ROOT);

    // Assess
    expect(text).toContain(
      'export const handler = createHttpProducerHandler(runtime, {"results":true});',
    );
  });

  it('creates the runtime from the registry when the app exports none', () => {
    // Act
    const text = source('poller', makeApp(ROOT, 'registry'));

    // Assess
    expect(text).toContain('import { registry } from "../src/app.ts";');
    expect(text).toContain('import { createRuntime } from "../src/lambda/runtime.ts";');
    expect(text).toContain(
      'export const handler = createPollerHandler(createRuntime({ registry }));',
    );
  });
});

describe('writeEntries', () => {
  it('writes one handler file per function, ignored by git, and removes those of gone functions', async () => {
    // Prepare
    const serviceDir = await mkdtemp(path.join(tmpdir(), 'sc-entries-'));
    dirs.push(serviceDir);
    const app = makeApp(serviceDir, 'registry');
    const dir = path.join(serviceDir, ENTRY_DIR);
    await writeEntries(planned(), app, serviceDir);
    await writeFile(path.join(dir, 'task-reports-gone.js'), 'stale');
    const before = (await stat(path.join(dir, 'poller.js'))).mtimeMs;

    // Act
    await writeEntries(planned(), app, serviceDir);

    // Assess
    expect((await readdir(dir)).sort()).toEqual([
      '.gitignore',
      'cron-reports-purge.js',
      'poller.js',
      'producer-http.js',
      'producer-invoke.js',
      'task-reports-charge.js',
      'task-reports-purge.js',
      'task-reports-send.js',
    ]);
    expect(await readFile(path.join(dir, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    expect((await stat(path.join(dir, 'poller.js'))).mtimeMs).toBe(before);
    expect(entryHandler('poller')).toBe('.serverless-celery/poller.handler');
  });
});

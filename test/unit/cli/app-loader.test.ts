import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_APP, loadApp } from '../../../src/cli/app-loader.js';
import { AppConfigError } from '../../../src/cli/exit-codes.js';
import { ROOT } from '../../helpers/cli.js';

const FIXTURE = 'test/fixtures-app/cli-app.ts';
let dir: string;

/** Writes a module into the test's directory and returns its path. */
async function moduleFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sc-app-loader-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadApp', () => {
  it("loads this repository's demo app when nothing names one", async () => {
    // Act
    const app = await loadApp(undefined, { cwd: dir, env: {} });

    // Assess
    expect(app.module).toBe(DEFAULT_APP);
    expect(app.registry.tasks.map((task) => task.name)).toEqual([
      'ingest.save_event',
      'ingest.cleanup',
    ]);
    expect(app.runtime?.registry).toBe(app.registry);
  });

  it('resolves SERVERLESS_CELERY_APP from the working directory, and --app over it', async () => {
    // Act
    const fromEnv = await loadApp(undefined, {
      cwd: ROOT,
      env: { SERVERLESS_CELERY_APP: FIXTURE },
    });
    const fromFlag = await loadApp(`./${FIXTURE}`, {
      cwd: ROOT,
      env: { SERVERLESS_CELERY_APP: 'nowhere.ts' },
    });

    // Assess
    expect(fromEnv.module).toBe(FIXTURE);
    expect(fromEnv.registry.lookup('cli_test.add').kind).toBe('task');
    expect(fromFlag.registry.lookup('cli_test.fail').kind).toBe('task');
  });

  it('takes the registry of a module that exports only a runtime', async () => {
    // Prepare
    const src = path.join(ROOT, 'src');
    const file = await moduleFile(
      'runtime-only.ts',
      `import { createRegistry } from '${src}/core/registry.ts';
       import { createRuntime } from '${src}/lambda/runtime.ts';
       export const runtime = createRuntime({ registry: createRegistry({ tasks: [], queues: [{ name: 'q' }] }) });`,
    );

    // Act
    const app = await loadApp(file, { cwd: dir, env: {} });

    // Assess
    expect(app.registry.queues.map((queue) => queue.name)).toEqual(['q']);
    expect(app.runtime).toBeDefined();
  });

  it.each([
    [
      'a missing file',
      'missing.ts',
      /^the app module .*missing\.ts \(from --app\) does not exist: pass --app <module> or set SERVERLESS_CELERY_APP$/,
    ],
    [
      'a package that is not installed',
      'no-such-package-sc',
      /^cannot load the app no-such-package-sc: Error: Cannot find package 'no-such-package-sc'/,
    ],
  ])('explains %s', async (_, spec, message) => {
    // Act
    const loading = loadApp(spec, { cwd: dir, env: {} });

    // Assess
    await expect(loading).rejects.toThrow(AppConfigError);
    await expect(loading).rejects.toThrow(message);
  });

  it('explains a module without a registry, and a registry that fails its own checks', async () => {
    // Prepare
    const src = path.join(ROOT, 'src');
    const none = await moduleFile('none.ts', 'export const tasks = [];');
    const invalid = await moduleFile(
      'invalid.ts',
      `import { createRegistry } from '${src}/core/registry.ts';
       export const registry = createRegistry({ tasks: [], queues: [{ name: '' }] });`,
    );

    // Act
    const missing = loadApp(none, { cwd: dir, env: {} });
    const broken = loadApp(invalid, { cwd: dir, env: {} });

    // Assess: both handlers attach at once; awaiting one first would leave the other's
    // rejection unheard for a moment, which vitest reports as an unhandled error.
    await Promise.all([
      expect(missing).rejects.toThrow(
        `the app ${none} exports no registry: add \`export const registry = createRegistry({ tasks, queues })\``,
      ),
      expect(broken).rejects.toThrow(
        new RegExp(`^cannot load the app ${invalid}: registry: queues\\[0\\]\\.name: `),
      ),
    ]);
  });
});

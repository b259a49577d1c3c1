import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { loadAppModule } from '../../../src/serverless/load-app-module.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

async function refusal(spec: string): Promise<InvalidConfigError> {
  const error = await loadAppModule(spec, FIXTURES).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(InvalidConfigError);
  return error as InvalidConfigError;
}

describe('loadAppModule', () => {
  it.each([
    ['a TypeScript app, through tsx', './app.ts', ['reports.send', 'reports.purge']],
    ['a JavaScript app (.mjs), through import()', './app.mjs', ['reports.send', 'reports.purge']],
  ])('loads %s', async (_case, spec, tasks) => {
    // Act
    const app = await loadAppModule(spec, FIXTURES);

    // Assess
    expect(app.file).toBe(path.join(FIXTURES, spec));
    expect(app.registry.tasks.map((task) => task.name).sort()).toEqual([...tasks].sort());
    expect(app).toMatchObject({ registryExport: 'registry', exportsRuntime: false });
  });

  it('takes the registry of an app that exports only its runtime', async () => {
    // Act
    const app = await loadAppModule('./runtime-only.ts', FIXTURES);

    // Assess
    expect(app.registry.tasks.map((task) => task.name)).toEqual(['ops.ping']);
    expect(app).toMatchObject({ registryExport: 'runtime', exportsRuntime: true });
  });

  it.each([
    ['exports no registry', './no-registry.mjs', /^\.\/no-registry\.mjs exports no registry: add/],
    ['does not exist', './src/app.ts', /^\.\/src\/app\.ts does not exist \(resolved from /],
    [
      'throws at its top level',
      './broken.mjs',
      /^\.\/broken\.mjs failed to load: Error: cannot reach the config service$/,
    ],
  ])('refuses, naming custom.celery.app, a module that %s', async (_case, spec, message) => {
    // Act
    const error = await refusal(spec);

    // Assess
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toBe('custom.celery.app');
    expect(error.issues[0]?.message).toMatch(message);
  });
});

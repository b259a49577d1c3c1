import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  clearBuildFolder,
  esbuildSettings,
  listsEsbuildPlugin,
} from '../../../src/serverless/bundling.js';
import type { Serverless } from '../../../src/serverless/serverless-types.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('esbuildSettings', () => {
  it('bundles ES modules as .mjs with the broker and results as constants, and no AWS SDK', () => {
    // Act
    const settings = esbuildSettings('rabbitmq');

    // Assess
    expect(settings).toMatchObject({
      bundle: true,
      minify: true,
      format: 'esm',
      outputFileExtension: '.mjs',
      exclude: ['@aws-sdk/*'],
      // Without it, serverless-esbuild leaves a build context alive after a bundle error and
      // `package` never exits (test/integration/serverless-package.test.ts runs one).
      skipRebuild: true,
      define: {
        'process.env.SERVERLESS_CELERY_BROKER': '"rabbitmq"',
        'process.env.SERVERLESS_CELERY_RESULTS': '"none"',
      },
    });
    expect((settings.banner as { js: string }).js).toMatch(/createRequire\(import\.meta\.url\)/);
  });

  it('lets the service’s own custom.esbuild win, but for the broker and results constants', () => {
    // Act
    const settings = esbuildSettings(
      'redis',
      {
        minify: false,
        define: {
          'process.env.STAGE': '"dev"',
          'process.env.SERVERLESS_CELERY_BROKER': '"x"',
          'process.env.SERVERLESS_CELERY_RESULTS': '"x"',
        },
      },
      true,
    );

    // Assess
    expect(settings.minify).toBe(false);
    expect(settings.define).toEqual({
      'process.env.STAGE': '"dev"',
      'process.env.SERVERLESS_CELERY_BROKER': '"redis"',
      'process.env.SERVERLESS_CELERY_RESULTS': '"redis"',
    });
  });
});

describe('clearBuildFolder', () => {
  it.each([
    ['the default folders', {}, '.esbuild/.build'],
    ['folders of its own', { outputWorkFolder: 'out', outputBuildFolder: 'b' }, 'out/b'],
  ])('empties serverless-esbuild’s build folder, in %s', async (_case, settings, folder) => {
    // Prepare
    const serviceDir = await mkdtemp(path.join(tmpdir(), 'sc-bundling-'));
    dirs.push(serviceDir);
    const stale = path.join(serviceDir, folder, '.serverless-celery', 'dispatcher.mjs');
    await mkdir(path.dirname(stale), { recursive: true });
    await writeFile(stale, 'export const handler = 1;');

    // Act
    await clearBuildFolder(serviceDir, settings);

    // Assess
    expect(existsSync(path.join(serviceDir, folder))).toBe(false);
    expect(existsSync(path.dirname(path.join(serviceDir, folder)))).toBe(true);
  });
});

describe('listsEsbuildPlugin', () => {
  it.each([
    [['serverless-celery', 'serverless-esbuild'], true],
    [{ modules: ['serverless-esbuild'] }, true],
    [['serverless-celery', 'serverless-offline'], false],
    [undefined, false],
  ])('reads plugins %j: %s', (plugins, listed) => {
    // Prepare
    const serverless = { service: { plugins } } as unknown as Serverless;

    // Act, Assess
    expect(listsEsbuildPlugin(serverless)).toBe(listed);
  });
});

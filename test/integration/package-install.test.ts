/**
 * The npm package as a user meets it: `npm pack` of this repository, installed into a fresh
 * folder of the OS temp directory (no access to this repository's sources or `node_modules`;
 * dependencies from the registry), then used the way the README says: the library imported from
 * JavaScript, the installed CLI sending tasks of a JavaScript and of a TypeScript app, the
 * declarations type-checking an app, and the Serverless plugin found through `require`.
 *
 * Redis: database 12, a queue of its own, its keys deleted afterwards. Takes a minute or two
 * (build, install from npm's cache or the registry).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../src/brokers/redis/keys.js';
import { USER_PROJECT_FILES } from '../fixtures-app/user-project.js';
import {
  installProject,
  type PackedTarball,
  packRepository,
  pinnedVersions,
  runIn,
} from '../helpers/packed-package.js';
import { deleteQueueKeys, redisUrl, uniqueQueue } from '../helpers/redis.js';

const BROKER_URL = redisUrl(12);
const QUEUE = uniqueQueue();
/** The installed bin, run without npx (npm's own start-up is not the CLI's). */
const BIN = 'node_modules/.bin/serverless-celery';

let workDir: string;
let project: string;
let tarball: PackedTarball;
let redis: Redis;

/** The installed CLI, as `npx serverless-celery …` runs it, with the test's broker. */
const cli = (args: readonly string[]) =>
  runIn(project, 'npx', ['--no-install', 'serverless-celery', ...args], { BROKER_URL });

beforeAll(async () => {
  workDir = await mkdtemp(path.join(tmpdir(), 'sc-package-'));
  tarball = await packRepository(path.join(workDir, 'pack'));
  project = await installProject(
    path.join(workDir, 'project'),
    tarball.file,
    await pinnedVersions(['zod', 'typescript', '@types/node', 'esbuild']),
  );
  for (const [name, text] of Object.entries(USER_PROJECT_FILES)) {
    await mkdir(path.dirname(path.join(project, name)), { recursive: true });
    await writeFile(path.join(project, name), text.replaceAll('QUEUE_NAME', QUEUE));
  }
  redis = new Redis(BROKER_URL, { maxRetriesPerRequest: 1 });
}, 300_000);

afterAll(async () => {
  if (redis) {
    await deleteQueueKeys(redis, new RedisKeys(), [QUEUE]);
    await redis.quit();
  }
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the compiled library with its declarations and the CLI, no sources or tests', () => {
    // Assess
    const files = tarball.files;
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'src/cli/bin.mjs',
        'dist/index.js',
        'dist/index.d.ts',
        'dist/lambda/index.js',
        'dist/lambda/index.d.ts',
        'dist/cli/main.js',
        'dist/cli/main.d.ts',
      ]),
    );
    const unexpected = files.filter(
      (file) =>
        !/^dist\/.+\.(js|d\.ts)$/.test(file) &&
        !['package.json', 'README.md', 'src/cli/bin.mjs'].includes(file),
    );
    expect(unexpected).toEqual([]);
    expect(files.filter((file) => /^dist\/demo\//.test(file))).toEqual([]);
  });
});

describe('the installed package', () => {
  it('is imported from a JavaScript module: the library and its Lambda entry point', async () => {
    // Act
    const result = await runIn(project, 'node', ['check-imports.mjs']);

    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      library: {
        defineTask: 'function',
        createRegistry: 'function',
        createPublisher: 'function',
        createBroker: 'function',
        runLocalWorker: 'function',
        throwIfAborted: 'function',
        SoftTimeLimitExceeded: 'function',
        TimeLimitExceededError: 'function',
        InvalidArgumentsError: 'function',
      },
      lambda: {
        createTaskHandler: 'function',
        createPollerHandler: 'function',
        createAmazonMqDispatcher: 'function',
        createCronHandler: 'function',
        createRuntime: 'function',
        createHttpProducerHandler: 'function',
        redisOnceStore: 'function',
        rabbitMqOnceStore: 'function',
        redisTickLock: 'function',
      },
      internalsExported: [],
      deepImport: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
    });
  });

  it('runs the CLI without tsx for a JavaScript app: send puts a Celery message in Redis', async () => {
    // Act
    const sent = await cli([
      'send',
      'pkg.add',
      '--kwargs',
      '{"a": 1, "b": 2}',
      '--app',
      './app.mjs',
    ]);
    const traced = await runIn(project, 'node', [BIN, 'inspect', '--app', './app.mjs'], {
      BROKER_URL,
      NODE_DEBUG: 'esm',
    });

    // Assess
    expect(sent.code, sent.stderr).toBe(0);
    const id = sent.stdout.trim();
    const [envelope] = await redis.lrange(QUEUE, 0, -1);
    expect(JSON.parse(envelope ?? '{}')).toMatchObject({ headers: { id, task: 'pkg.add' } });
    // Node's ESM debug log names every module loaded.
    const modules = new Set(traced.stderr.match(/file:\/\/[^\s'"]+/g));
    expect(modules).toContain(`file://${project}/node_modules/serverless-celery/dist/cli/main.js`);
    expect(
      [...modules].filter((url) => /\/node_modules\/tsx\/|\/src\/cli\/main/.test(url)),
    ).toEqual([]);
  });

  it('exits 2 on kwargs the schema refuses: the app and the CLI share the error classes', async () => {
    // Act
    const refused = await cli([
      'send',
      'pkg.add',
      '--kwargs',
      '{"a": "x", "b": 2}',
      '--app',
      './app.mjs',
    ]);

    // Assess
    expect(refused.stderr).toContain('kwargs.a');
    expect(refused.code).toBe(2);
  });

  it('loads a TypeScript app through tsx, with the same error classes', async () => {
    // Act
    const sent = await cli([
      'send',
      'pkg.add',
      '--kwargs',
      '{"a": 1, "b": 2}',
      '--app',
      './src/app.ts',
    ]);
    const refused = await cli(['send', 'pkg.add', '--kwargs', '{"b": 2}', '--app', './src/app.ts']);

    // Assess
    expect(sent.code, sent.stderr).toBe(0);
    expect(await redis.llen(QUEUE)).toBe(2);
    expect(refused.stderr).toContain('kwargs.a');
    expect(refused.code).toBe(2);
  });

  it('asks for an app when none is named, rather than loading a demo it does not ship', async () => {
    // Act
    const result = await cli(['inspect']);

    // Assess
    expect(result.stderr).toContain('no app given: pass --app <module>');
    expect(result.code).toBe(78);
  });

  it('bundles a function with only the broker clients it is deployed with', async () => {
    // Act
    const result = await runIn(project, 'node', ['check-bundles.mjs']);

    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      task: [],
      poller: ['ioredis'],
      dispatcher: ['amqplib'],
      // A RabbitMQ app that stores results in Redis.
      dispatcherWithResults: ['ioredis', 'amqplib'],
    });
  });

  it('type-checks an app under strict NodeNext with its declarations', {
    timeout: 180_000,
  }, async () => {
    // Act
    const result = await runIn(project, 'npx', ['--no-install', 'tsc', '-p', '.']);

    // Assess
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('resolves `plugins: [serverless-celery]` as osls does: require() yields the plugin', async () => {
    // Act
    const result = await runIn(project, 'node', ['check-plugin.cjs']);

    // Assess
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      resolved: 'node_modules/serverless-celery/dist/require-entry.js',
      plugin: 'function',
      sameAsSubpath: true,
      library: 'function',
    });
  });
});

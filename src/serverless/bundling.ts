/**
 * The bundling the plugin brings: serverless-esbuild, run by the plugin itself (a user lists only
 * `serverless-celery` under `plugins`), with the settings every function of the library needs.
 *
 * serverless-esbuild is composed, not registered: the plugin constructs it with the same
 * arguments the framework would and answers its hooks in its own `hooks`, so it can write the
 * settings and the handler files before serverless-esbuild reads them, whatever order plugins
 * are loaded in, through documented plugin API alone.
 */
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type {
  Hook,
  PluginOptions,
  PluginUtils,
  Serverless,
  ServerlessPluginClass,
} from './serverless-types.js';

/** The plugin that does the bundling. */
const ESBUILD_PLUGIN = 'serverless-esbuild';

/**
 * serverless-esbuild's settings (`custom.esbuild`) for functions of the library, with `user`'s
 * (the service's own `custom.esbuild`) on top, except the broker and results constants.
 *
 * - ES modules, as `.mjs`: a zip holds no package.json, so Lambda would load a `.js` bundle as
 *   CommonJS. The banner gives the bundled CommonJS dependencies (ioredis, amqplib) the
 *   `require` an ES module lacks (`Dynamic require of "node:url" is not supported` otherwise).
 * - `SERVERLESS_CELERY_BROKER` is a constant: createBroker branches on it, and esbuild drops the
 *   other broker's adapter and client (ioredis about 190 KiB, amqplib about 120 KiB minified).
 * - `SERVERLESS_CELERY_RESULTS` is `"redis"` when the app stores results, else `"none"`: then
 *   createResultBackend's branch is dead and no result backend (nor, on RabbitMQ, ioredis) ships.
 * - The AWS SDK stays out: nodejs20.x and later ship v3, and we call only Lambda's Invoke and,
 *   with a broker secret, Secrets Manager's GetSecretValue (bundling them adds about 360 KiB to
 *   the poller and dispatcher, and to their cold start).
 * - `skipRebuild`: one plain build per function instead of an incremental build context.
 *   serverless-esbuild disposes of its contexts only after a successful build, so after a bundle
 *   error (an unresolvable import) `package` printed the error and never exited.
 * - No source maps: they would double the zips and need `--enable-source-maps`; our errors keep
 *   their names without them (literal `name` fields).
 */
export function esbuildSettings(
  broker: 'redis' | 'rabbitmq',
  user: Readonly<Record<string, unknown>> = {},
  results = false,
): Record<string, unknown> {
  const { define, ...rest } = user;
  return {
    bundle: true,
    minify: true,
    treeShaking: true,
    format: 'esm',
    outputFileExtension: '.mjs',
    platform: 'node',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    // Packages that ship both builds give their ES module one, which tree-shakes.
    mainFields: ['module', 'main'],
    exclude: ['@aws-sdk/*'],
    sourcemap: false,
    skipRebuild: true,
    ...rest,
    define: {
      ...(define as Record<string, string> | undefined),
      'process.env.SERVERLESS_CELERY_BROKER': JSON.stringify(broker),
      'process.env.SERVERLESS_CELERY_RESULTS': JSON.stringify(results ? 'redis' : 'none'),
    },
  };
}

/** The hooks in which serverless-esbuild bundles and zips for a deployment. */
export const PACKAGING_HOOKS: ReadonlySet<string> = new Set([
  'before:package:createDeploymentArtifacts',
  'before:deploy:function:packageFunction',
]);

/**
 * Empties serverless-esbuild's build folder before it bundles for a deployment. It zips every
 * file of that folder but the other functions' bundles into each function, so a bundle left by
 * an interrupted `offline` (of a function this package does not have, like the dispatcher of a
 * RabbitMQ run) would ship in every zip. serverless-esbuild deletes the folder after packaging
 * anyway.
 */
export async function clearBuildFolder(
  serviceDir: string,
  settings: Readonly<Record<string, unknown>>,
): Promise<void> {
  const work =
    typeof settings.outputWorkFolder === 'string' ? settings.outputWorkFolder : '.esbuild';
  const build =
    typeof settings.outputBuildFolder === 'string' ? settings.outputBuildFolder : '.build';
  await rm(path.join(serviceDir, work, build), { recursive: true, force: true });
}

/** Whether the service lists serverless-esbuild itself. */
export function listsEsbuildPlugin(serverless: Serverless): boolean {
  const { plugins } = serverless.service;
  const names = isList(plugins) ? plugins : (plugins?.modules ?? []);
  return names.includes(ESBUILD_PLUGIN);
}

function isList(value: unknown): value is readonly string[] {
  return Array.isArray(value);
}

/**
 * Constructs serverless-esbuild for this service and returns its hooks.
 *
 * @throws when serverless-esbuild is not installed, with the command that installs it
 */
export function composeEsbuild(
  serverless: Serverless,
  options: PluginOptions,
  utils: PluginUtils,
): Record<string, Hook> {
  let Plugin: ServerlessPluginClass;
  try {
    Plugin = createRequire(import.meta.url)(ESBUILD_PLUGIN) as ServerlessPluginClass;
  } catch (error) {
    throw new serverless.classes.Error(
      `serverless-celery bundles with ${ESBUILD_PLUGIN}, which is not installed ` +
        `(${(error as Error).message}): npm install --save-dev ${ESBUILD_PLUGIN} esbuild`,
    );
  }
  return new Plugin(serverless, options, utils).hooks;
}

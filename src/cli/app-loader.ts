/**
 * Loading the app a command works on: a module exporting `registry` (and optionally the
 * `runtime` its Lambda functions share), like Celery's `-A proj`. A JavaScript app is imported as
 * it is; a TypeScript one (`.ts`, `.mts`, `.cts`) through tsx, registered only then.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CeleryError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import type { LambdaRuntime } from '../lambda/runtime.js';
import type { CliContext } from './context.js';
import { AppConfigError } from './exit-codes.js';

/** Environment variable naming the app module when `--app` is not given. */
export const APP_ENV = 'SERVERLESS_CELERY_APP';

/**
 * True when this module runs from the repository's TypeScript sources, under a TypeScript loader
 * already (tsx, vitest); false in the compiled package.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * The demo app of this repository, used when neither `--app` nor {@link APP_ENV} names one;
 * undefined in the installed package, which ships no demo.
 */
export const DEFAULT_APP = FROM_SOURCES
  ? fileURLToPath(new URL('../demo/app.ts', import.meta.url))
  : undefined;

/** A loaded app. */
export interface LoadedApp {
  /** What was loaded, as the person wrote it (or the default's path). */
  readonly module: string;
  readonly registry: Registry;
  /** The app's runtime, when the module exports one: its broker is the app's broker. */
  readonly runtime?: LambdaRuntime;
}

/**
 * Imports the app module: `spec`, else `env.SERVERLESS_CELERY_APP`, else (in this repository)
 * the demo app. A spec that looks like a path (starts with `.` or `/`, or ends in `.ts`/`.js`/…)
 * is resolved from `cwd`; anything else is imported as a package name.
 *
 * @throws AppConfigError when no app is named (installed package), or the module is missing,
 *   fails to load, or exports no registry
 */
export async function loadApp(
  spec: string | undefined,
  options: { readonly cwd: string; readonly env: Readonly<Record<string, string | undefined>> },
): Promise<LoadedApp> {
  const chosen = spec || options.env[APP_ENV] || DEFAULT_APP;
  if (!chosen) {
    throw new AppConfigError(
      `no app given: pass --app <module> (a module exporting \`registry\`) or set ${APP_ENV}`,
    );
  }
  const from = spec ? '--app' : options.env[APP_ENV] ? APP_ENV : 'the default app';
  const target = await resolveModule(chosen, options.cwd, from);
  let loaded: Record<string, unknown>;
  try {
    if (TYPESCRIPT_MODULE.test(target)) await registerTypeScript();
    loaded = (await import(target)) as Record<string, unknown>;
  } catch (error) {
    // The app's own start-up checks (task options, registry) explain themselves.
    const reason =
      error instanceof CeleryError
        ? error.message
        : `${(error as Error).name}: ${(error as Error).message}`;
    throw new AppConfigError(`cannot load the app ${chosen}: ${reason}`, { cause: error });
  }
  const runtime = isRuntime(loaded.runtime) ? loaded.runtime : undefined;
  const registry = isRegistry(loaded.registry) ? loaded.registry : runtime?.registry;
  if (!registry) {
    throw new AppConfigError(
      `the app ${chosen} exports no registry: add \`export const registry = createRegistry({ tasks, queues })\``,
    );
  }
  return { module: chosen, registry, ...(runtime ? { runtime } : {}) };
}

/**
 * The queues a command works on: those asked for (a warning for any the app does not declare),
 * else every queue of the app.
 *
 * @throws AppConfigError when neither gives a queue
 */
export function queuesOf(
  context: Pick<CliContext, 'stderr'>,
  app: LoadedApp,
  asked: readonly string[] | undefined,
): string[] {
  for (const queue of asked ?? []) {
    if (!app.registry.queue(queue)) {
      context.stderr(`warning: queue ${queue} is not declared by the app ${app.module}\n`);
    }
  }
  const queues = asked ? [...asked] : app.registry.queues.map((queue) => queue.name);
  if (queues.length === 0) {
    throw new AppConfigError(`the app ${app.module} declares no queue: name one with --queue(s)`);
  }
  return queues;
}

const PATH_LIKE = /^(\.{1,2}[/\\]|[/\\]|[A-Za-z]:[/\\])|\.(ts|mts|cts|js|mjs|cjs)$/;
const TYPESCRIPT_MODULE = /\.(ts|mts|cts)$/;

let typeScriptRegistered = FROM_SOURCES;

/**
 * Registers tsx's loader for the rest of the process, once. Only a TypeScript app pays for it
 * (its loader thread and esbuild: about half a second more per call, measured by
 * `bench/cli-start.ts`). tsx, not Node's own type stripping: an app written for NodeNext imports
 * `./tasks.js` meaning `./tasks.ts`. A global `register()`, not `tsImport()`: `tsImport` loads the
 * app's imports of this package as a second copy, whose error classes `instanceof` misses.
 */
async function registerTypeScript(): Promise<void> {
  if (typeScriptRegistered) return;
  const { register } = await import('tsx/esm/api');
  register();
  typeScriptRegistered = true;
}

async function resolveModule(spec: string, cwd: string, from: string): Promise<string> {
  if (!PATH_LIKE.test(spec)) return spec;
  const file = path.resolve(cwd, spec);
  try {
    await access(file);
  } catch {
    throw new AppConfigError(
      `the app module ${file} (from ${from}) does not exist: pass --app <module> or set ${APP_ENV}`,
    );
  }
  return pathToFileURL(file).href;
}

function isRegistry(value: unknown): value is Registry {
  const candidate = value as Partial<Registry> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    Array.isArray(candidate.tasks) &&
    Array.isArray(candidate.queues) &&
    typeof candidate.lookup === 'function'
  );
}

function isRuntime(value: unknown): value is LambdaRuntime {
  const candidate = value as Partial<LambdaRuntime> | null | undefined;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.broker === 'function' &&
    isRegistry(candidate.registry)
  );
}

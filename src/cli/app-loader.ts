/**
 * Loading the app a command works on: a module exporting `registry` (and optionally the
 * `runtime` its Lambda functions share), like Celery's `-A proj`.
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

/** The app of this repository, used when neither `--app` nor {@link APP_ENV} names one. */
export const DEFAULT_APP = fileURLToPath(new URL('../demo/app.ts', import.meta.url));

/** A loaded app. */
export interface LoadedApp {
  /** What was loaded, as the person wrote it (or the default's path). */
  readonly module: string;
  readonly registry: Registry;
  /** The app's runtime, when the module exports one: its broker is the app's broker. */
  readonly runtime?: LambdaRuntime;
}

/**
 * Imports the app module: `spec`, else `env.SERVERLESS_CELERY_APP`, else the demo app. A spec
 * that looks like a path (starts with `.` or `/`, or ends in `.ts`/`.js`/…) is resolved from
 * `cwd`; anything else is imported as a package name.
 *
 * @throws AppConfigError when the module is missing, fails to load, or exports no registry
 */
export async function loadApp(
  spec: string | undefined,
  options: { readonly cwd: string; readonly env: Readonly<Record<string, string | undefined>> },
): Promise<LoadedApp> {
  const chosen = spec || options.env[APP_ENV] || DEFAULT_APP;
  const from = spec ? '--app' : options.env[APP_ENV] ? APP_ENV : 'the default app';
  const target = await resolveModule(chosen, options.cwd, from);
  let loaded: Record<string, unknown>;
  try {
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

/**
 * The registry loader of the Serverless plugin: imports the app module that `custom.celery.app`
 * names, at package time, to read its tasks. A TypeScript module goes through tsx's ESM API
 * (`tsImport`, which registers no loader for the rest of the process); a JavaScript module
 * (`app.mjs`, `app.js`) through a plain `import()`.
 *
 * Importing the app runs its top level: task definitions and `createRegistry` (which check
 * themselves), and whatever else the module does. Nothing in the library connects at import
 * time (brokers and stores connect on first use), so packaging needs no broker.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CeleryError, InvalidConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { CONFIG_PATH } from './celery-config.js';

/** The app module, loaded. */
export interface AppModule {
  /** Its absolute path. */
  readonly file: string;
  readonly registry: Registry;
  /**
   * Where the functions get the registry: the module's `registry` export, or its `runtime`'s
   * when it exports only a runtime.
   */
  readonly registryExport: 'registry' | 'runtime';
  /** Whether it exports a `runtime` (then the poller, dispatcher, producers and crons use it). */
  readonly exportsRuntime: boolean;
}

const TYPESCRIPT = /\.(ts|mts|cts|tsx)$/;

/**
 * Imports the app module `spec`, resolved from `serviceDir`.
 *
 * @throws InvalidConfigError naming `custom.celery.app` when the file does not exist, fails to
 *   load (the module's own error is the cause and is quoted), or exports no registry
 */
export async function loadAppModule(spec: string, serviceDir: string): Promise<AppModule> {
  const file = path.resolve(serviceDir, spec);
  const fail = (message: string, cause?: unknown) =>
    new InvalidConfigError(
      'serverless.yml',
      [{ path: `${CONFIG_PATH}.app`, message }],
      cause === undefined ? undefined : { cause },
    );
  try {
    await access(file);
  } catch {
    throw fail(`${spec} does not exist (resolved from ${serviceDir} to ${file})`);
  }
  let loaded: Record<string, unknown>;
  try {
    const url = pathToFileURL(file).href;
    if (TYPESCRIPT.test(file)) {
      // Imported only for a TypeScript app, so a JavaScript app never loads tsx.
      const { tsImport } = await import('tsx/esm/api');
      loaded = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      loaded = (await import(url)) as Record<string, unknown>;
    }
  } catch (error) {
    const reason =
      error instanceof CeleryError
        ? error.message
        : `${(error as Error)?.name}: ${(error as Error)?.message}`;
    throw fail(`${spec} failed to load: ${reason}`, error);
  }
  const runtime = loaded.runtime as { registry?: unknown } | undefined;
  const exportsRuntime = isObject(runtime) && isRegistry(runtime.registry);
  if (isRegistry(loaded.registry)) {
    return { file, registry: loaded.registry, registryExport: 'registry', exportsRuntime };
  }
  if (exportsRuntime) {
    const registry = runtime?.registry as Registry;
    return { file, registry, registryExport: 'runtime', exportsRuntime };
  }
  throw fail(
    `${spec} exports no registry: add \`export const registry = createRegistry({ tasks, queues })\``,
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Duck-typed: the app's copy of the library may not be ours, so no `instanceof`. */
function isRegistry(value: unknown): value is Registry {
  return (
    isObject(value) &&
    Array.isArray(value.tasks) &&
    Array.isArray(value.queues) &&
    typeof value.lookup === 'function'
  );
}

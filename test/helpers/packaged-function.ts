/**
 * Packaged functions run as Lambda would run them, under a Node binary of the test's choice: the
 * zip unpacked into a folder of its own (Lambda's `/var/task`), the handler file found as Lambda's
 * Node.js runtime finds it, and an execution environment (`lambda-environment.mjs`) forked with
 * the function's environment from the template plus Lambda's reserved variables, nothing of the
 * test process's. Invocations cross the IPC channel as JSON, as they cross Lambda's.
 *
 * The AWS SDK is not in the bundles (the runtime provides it). An ES module resolves bare
 * specifiers from the `node_modules` folders above it only (`NODE_PATH` is for `require`), so
 * the folder holds `node_modules/@aws-sdk`, a link to this repository's: Node follows the link to
 * its real path, and the SDK's own dependencies (`@smithy/*`) resolve from there. Nothing else is
 * linked, so a bundle that left out any other package fails to import.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from './cli.js';
import { functionsByKey, type PackagedService, unzip } from './packaged-service.js';

/** The execution environment's program. */
const ENVIRONMENT_PROGRAM = path.join(import.meta.dirname, 'lambda-environment.mjs');

/** Lambda's Node.js runtime tries these extensions for a handler's module, in this order. */
const HANDLER_EXTENSIONS = ['.js', '.mjs', '.cjs'];

/** One function of a packaged service, as its template declares it. */
export interface PackagedFunction {
  /** The function's key: its name without the `<service>-<stage>-` prefix. */
  readonly key: string;
  /** The deployed name, `AWS_LAMBDA_FUNCTION_NAME`. */
  readonly name: string;
  /** `Handler`: `<module path>.<export>`. */
  readonly handler: string;
  readonly runtime: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** `Environment.Variables`. */
  readonly environment: Readonly<Record<string, string>>;
  /** The zip, `<package dir>/<key>.zip`. */
  readonly zip: string;
}

/**
 * Every function of `service`, by key, from its template.
 *
 * @throws Error naming the function and variable when a variable is not a plain string (a
 *   CloudFormation intrinsic such as `Ref` or `Fn::Sub`, which only a deployment resolves)
 */
export function packagedFunctions(service: PackagedService): Map<string, PackagedFunction> {
  const found = new Map<string, PackagedFunction>();
  for (const [key, { Properties }] of functionsByKey(service)) {
    const environment = Properties.Environment as
      | { Variables?: Record<string, unknown> }
      | undefined;
    found.set(key, {
      key,
      name: String(Properties.FunctionName),
      handler: String(Properties.Handler),
      runtime: String(Properties.Runtime),
      timeoutSeconds: Number(Properties.Timeout ?? 6),
      memoryMb: Number(Properties.MemorySize ?? 1024),
      environment: plainVariables(key, environment?.Variables ?? {}),
      zip: path.join(service.dir, `${key}.zip`),
    });
  }
  return found;
}

/** `variables` as strings; an intrinsic would reach the process as `[object Object]`. */
function plainVariables(key: string, variables: Record<string, unknown>): Record<string, string> {
  for (const [name, value] of Object.entries(variables)) {
    if (typeof value !== 'string') {
      throw new Error(
        `${key}: ${name} is ${JSON.stringify(value)} in the template, not a string a test can set`,
      );
    }
  }
  return variables as Record<string, string>;
}

/** A function unpacked into its task folder. */
export interface UnpackedFunction extends PackagedFunction {
  /** The task folder, Lambda's `/var/task`. */
  readonly taskRoot: string;
  /** The handler's module file, absolute. */
  readonly file: string;
  readonly exportName: string;
  /** Every path in the zip. */
  readonly entries: readonly string[];
}

/**
 * Unpacks `fn`'s zip into `<into>/<key>/`, links the AWS SDK beside it and finds the handler's
 * module file as the runtime does (`<module path>` plus `.js`, `.mjs` or `.cjs`).
 *
 * @throws Error naming the handler when the zip holds no module for it
 */
export async function unpackFunction(
  fn: PackagedFunction,
  into: string,
): Promise<UnpackedFunction> {
  const taskRoot = path.join(into, fn.key);
  const entries = await unzip(fn.zip);
  for (const [name, data] of entries) {
    if (name.endsWith('/')) continue;
    const file = path.join(taskRoot, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
  }
  await mkdir(path.join(taskRoot, 'node_modules'), { recursive: true });
  await symlink(
    path.join(ROOT, 'node_modules', '@aws-sdk'),
    path.join(taskRoot, 'node_modules', '@aws-sdk'),
    'dir',
  );
  const dot = fn.handler.lastIndexOf('.');
  const modulePath = fn.handler.slice(0, dot);
  const file = HANDLER_EXTENSIONS.map((ext) => path.join(taskRoot, `${modulePath}${ext}`)).find(
    (candidate) => existsSync(candidate),
  );
  if (!file) {
    throw new Error(
      `${fn.key}.zip holds no ${modulePath}{${HANDLER_EXTENSIONS.join(',')}} for handler ${fn.handler}: ${[...entries.keys()].join(', ')}`,
    );
  }
  return {
    ...fn,
    taskRoot,
    file,
    exportName: fn.handler.slice(dot + 1),
    entries: [...entries.keys()],
  };
}

/** What an invocation came to: the handler's result, or the error Lambda would report. */
export type InvokeResult =
  | { readonly ok: true; readonly payload: unknown; readonly ms: number }
  | {
      readonly ok: false;
      readonly error: { errorType: string; errorMessage: string; trace: string[] };
    };

/** A running execution environment of one function. */
export interface LambdaEnvironment {
  readonly fn: UnpackedFunction;
  /** `process.version` in the environment. */
  readonly node: string;
  /** Time to import the handler (the cold start's init), ms. */
  readonly initMs: number;
  /**
   * Runs one invocation (after those already sent). The context's remaining time starts at
   * `remainingMs`.
   *
   * @param remainingMs - @defaultValue the function's timeout
   */
  invoke(event: unknown, options?: { remainingMs?: number }): Promise<InvokeResult>;
  /** What the function logged so far (stdout and stderr). */
  logs(): string;
  /** Ends the environment. */
  stop(): Promise<void>;
}

/** Options of {@link startEnvironment}. */
export interface StartEnvironmentOptions {
  /** The Node binary. */
  readonly node: string;
  /** Variables set over the function's own (an endpoint stand-in's URL, say). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long the import may take, ms. @defaultValue 20000 */
  readonly initTimeoutMs?: number;
}

/**
 * Starts an execution environment of `fn` under `options.node` and waits for its handler to
 * load.
 *
 * @throws Error with the import's error and the environment's output when the handler fails to load
 */
export async function startEnvironment(
  fn: UnpackedFunction,
  options: StartEnvironmentOptions,
): Promise<LambdaEnvironment> {
  const child = fork(ENVIRONMENT_PROGRAM, [fn.file, fn.exportName], {
    execPath: options.node,
    // Not the test runner's flags (loaders, conditions): the runtime starts Node with none.
    execArgv: [],
    cwd: fn.taskRoot,
    env: lambdaEnvironmentVariables(fn, options.env),
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let logs = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    logs += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    logs += chunk.toString();
  });
  const pending = new Map<number, (result: InvokeResult) => void>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await waitForInit(child, fn, () => logs, options.initTimeoutMs ?? 20_000);
  child.on('message', (message: EnvironmentMessage) => {
    if (message.type === 'result') {
      const payload = JSON.parse(message.payload) as unknown;
      pending.get(message.id)?.({ ok: true, payload, ms: message.ms });
    } else if (message.type === 'error') {
      pending.get(message.id)?.({ ok: false, error: message.error });
    }
    if ('id' in message) pending.delete(message.id);
  });
  child.once('exit', (code, signal) => {
    const error = {
      errorType: 'Runtime.ExitError',
      errorMessage: `${fn.key} exited (${code ?? signal}) during the invocation:\n${logs.slice(-2000)}`,
      trace: [],
    };
    for (const settle of pending.values()) settle({ ok: false, error });
    pending.clear();
  });
  let next = 0;
  return {
    fn,
    node: ready.node,
    initMs: ready.initMs,
    invoke(event, { remainingMs = fn.timeoutSeconds * 1000 } = {}) {
      const id = next++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        child.send({ id, event, remainingMs });
      });
    },
    logs: () => logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

type EnvironmentMessage =
  | { type: 'ready'; node: string; initMs: number }
  | { type: 'init-error'; error: { errorType: string; errorMessage: string; trace: string[] } }
  | { type: 'result'; id: number; payload: string; ms: number }
  | {
      type: 'error';
      id: number;
      error: { errorType: string; errorMessage: string; trace: string[] };
    };

/** Resolves with the environment's `ready`; rejects on an init error, an exit or the timeout. */
function waitForInit(
  child: ChildProcess,
  fn: UnpackedFunction,
  logs: () => string,
  timeoutMs: number,
): Promise<{ node: string; initMs: number }> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => fail(error.message);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited (${code ?? signal})`);
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    function fail(why: string): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${fn.key} (${fn.file}) did not load: ${why}\n${logs().slice(-2000)}`));
    }
    child.once('error', onError);
    child.once('exit', onExit);
    child.once('message', (message: EnvironmentMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        child.off('error', onError);
        child.off('exit', onExit);
        resolve(message);
      } else if (message.type === 'init-error') {
        const { errorType, errorMessage, trace } = message.error;
        fail(`${errorType}: ${errorMessage}\n${trace.join('\n')}`);
      } else {
        fail(`it sent ${message.type} before ready`);
      }
    });
  });
}

/**
 * The function's environment as Lambda sets it: its variables, then the reserved ones (handler,
 * name, memory, region, runtime, task root, credentials), then `extra`. The SDK's shared config
 * files point into the task folder, where there are none, so a developer's profile cannot leak
 * in.
 */
function lambdaEnvironmentVariables(
  fn: UnpackedFunction,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    ...fn.environment,
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    HOME: fn.taskRoot,
    LAMBDA_TASK_ROOT: fn.taskRoot,
    _HANDLER: fn.handler,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'ASIAEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'example-secret',
    AWS_SESSION_TOKEN: 'example-token',
    AWS_CONFIG_FILE: path.join(fn.taskRoot, '.aws-none', 'config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(fn.taskRoot, '.aws-none', 'credentials'),
    ...extra,
  };
}

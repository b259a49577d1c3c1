/**
 * serverless-offline as a child process of `npm start`: `osls offline start` in a process group
 * of its own (so a terminal's Ctrl-C reaches only us, and we stop it after the poller has settled
 * what it holds), its output relayed line by line, readiness by its ports, and a Lambda client
 * aimed at its Lambda endpoint.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import path from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';

/** Options of {@link OfflineProcess.start}. */
export interface OfflineOptions {
  /** The service folder (where `serverless.yml` is). */
  readonly cwd: string;
  readonly stage: string;
  /** Address both servers listen on. */
  readonly host: string;
  /** The HTTP API's port. */
  readonly httpPort: number;
  /** The Lambda Invoke API's port. */
  readonly lambdaPort: number;
  /** `--param` values (`serverless.yml` params). */
  readonly params: Readonly<Record<string, string>>;
  /** Receives every line serverless-offline prints (stdout and stderr). */
  readonly onLine: (line: string) => void;
}

/** How the child ended. */
export interface OfflineExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Credentials and region for everything local. Dummy on purpose, even when real ones are in the
 * environment: serverless-offline copies every `AWS_*` variable into the functions, and a
 * function that reached AWS by mistake must fail instead of acting on a real account.
 */
export const LOCAL_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'local',
  AWS_SECRET_ACCESS_KEY: 'local',
  AWS_REGION: 'us-east-1',
  // The functions run on nodejs22.x in AWS; locally the SDK would warn in every worker thread
  // (and in the poller) that its 2027 releases need Node 22, which says nothing about them.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
} as const;

/** serverless-offline, running. */
export class OfflineProcess {
  /** Resolves when the child has exited, however it ended. */
  readonly exited: Promise<OfflineExit>;
  readonly #child: ChildProcess;
  readonly #options: OfflineOptions;
  #exit: OfflineExit | undefined;

  private constructor(options: OfflineOptions) {
    this.#options = options;
    const args = [
      oslsBin(),
      'offline',
      'start',
      '--stage',
      options.stage,
      '--host',
      options.host,
      '--httpPort',
      String(options.httpPort),
      '--lambdaPort',
      String(options.lambdaPort),
      // httpApi routes have no stage in their path anyway; this keeps `http` events alike.
      '--noPrependStageInUrl',
      ...Object.entries(options.params).map(([name, value]) => `--param=${name}=${value}`),
    ];
    this.#child = spawn(process.execPath, args, {
      cwd: options.cwd,
      // A group of its own: Ctrl-C in a terminal signals the foreground group, and the poller
      // must settle its messages through serverless-offline before serverless-offline stops.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        ...LOCAL_AWS_ENV,
        // serverless-offline copies every AWS_* variable into the functions, and the AWS SDK
        // reads this one as the Lambda endpoint: the dispatcher (and a poller, if one ran)
        // invokes the task functions here instead of the real AWS Lambda.
        AWS_ENDPOINT_URL_LAMBDA: `http://${options.host}:${options.lambdaPort}`,
        FORCE_COLOR: '0',
      },
    });
    relayLines(this.#child.stdout, options.onLine);
    relayLines(this.#child.stderr, options.onLine);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
      this.#child.once('error', (error) => {
        options.onLine(`cannot start serverless-offline: ${error.message}`);
        this.#exit = { code: null, signal: null };
        resolve(this.#exit);
      });
    });
  }

  /** Starts `osls offline start` in `options.cwd`. */
  static start(options: OfflineOptions): OfflineProcess {
    return new OfflineProcess(options);
  }

  /** Process id of `osls`, also the id of its process group. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** The child has exited. */
  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /**
   * Resolves once both ports accept connections (serverless-offline opens them after
   * serverless-esbuild has bundled every function).
   *
   * @throws when the child exits first, or after `timeoutMs`
   */
  async waitReady(timeoutMs: number): Promise<void> {
    const { host, httpPort, lambdaPort } = this.#options;
    const deadline = Date.now() + timeoutMs;
    while (!this.#exit) {
      const open = await Promise.all([isListening(host, httpPort), isListening(host, lambdaPort)]);
      if (open.every(Boolean)) return;
      if (Date.now() > deadline) {
        throw new Error(`serverless-offline was not ready within ${timeoutMs / 1000} s`);
      }
      await Promise.race([sleep(250), this.exited]);
    }
    const { code, signal } = this.#exit;
    throw new Error(`serverless-offline exited (${signal ?? `code ${code}`}) before it was ready`);
  }

  /**
   * Stops serverless-offline and every process it started: SIGINT to its group (its own clean
   * shutdown), SIGKILL to the group after `graceMs`.
   */
  async stop(graceMs = 5_000): Promise<OfflineExit> {
    this.#signalGroup('SIGINT');
    const timer = setTimeout(() => this.#signalGroup('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    // serverless-offline's own children (none today, Docker or Python runners otherwise) share
    // its group and may outlive it.
    this.#signalGroup('SIGKILL');
    return exit;
  }

  /** Kills the group at once (a second Ctrl-C). */
  kill(): void {
    this.#signalGroup('SIGKILL');
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const { pid } = this.#child;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group is gone already, which is what we wanted.
    }
  }
}

/** `osls`'s command-line script, as installed next to this package. */
function oslsBin(): string {
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('osls/package.json');
  const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin: Record<string, string> };
  return path.join(path.dirname(manifest), bin.osls ?? 'bin/serverless.js');
}

/**
 * `<service>-<stage>-`: the prefix serverless-offline (and the framework) gives function names,
 * read from `serverless.yml`'s `service:` line.
 *
 * @throws when `serverless.yml` has no literal service name
 */
export function functionPrefix(cwd: string, stage: string): string {
  const text = readFileSync(path.join(cwd, 'serverless.yml'), 'utf8');
  const service = /^service:\s*['"]?([A-Za-z0-9-]+)['"]?\s*$/m.exec(text)?.[1];
  if (!service)
    throw new Error(`no literal "service:" name in ${path.join(cwd, 'serverless.yml')}`);
  return `${service}-${stage}-`;
}

/**
 * A Lambda client for serverless-offline's Invoke API: the same `InvokeCommand`s as in AWS, sent
 * to `endpoint`, signed with dummy credentials (serverless-offline does not check them).
 */
export function offlineLambdaClient(endpoint: string): LambdaClient {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??=
    LOCAL_AWS_ENV.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  return new LambdaClient({
    endpoint,
    region: LOCAL_AWS_ENV.AWS_REGION,
    credentials: {
      accessKeyId: LOCAL_AWS_ENV.AWS_ACCESS_KEY_ID,
      secretAccessKey: LOCAL_AWS_ENV.AWS_SECRET_ACCESS_KEY,
    },
  });
}

/** True when something accepts TCP connections on `host:port`. */
export function isListening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function relayLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line.replace(/\r$/, ''));
  });
  stream.on('end', () => {
    if (pending !== '') onLine(pending);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

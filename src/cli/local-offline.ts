/**
 * serverless-offline as a child process of `serverless-celery dev` (and so of `npm start`):
 * `osls offline start` in a process group of its own (so a terminal's Ctrl-C reaches only us, and
 * we stop it after the poller has settled what it holds), its output relayed line by line,
 * readiness by its ports, the HTTP routes it announces, and a Lambda client aimed at its Lambda
 * endpoint.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LambdaClient } from '@aws-sdk/client-lambda';

/** Options of {@link OfflineProcess.start}. */
export interface OfflineOptions {
  /** The service folder (where `serverless.yml` is). */
  readonly cwd: string;
  /** The service's configuration file, in `cwd`. @defaultValue `serverless.yml` */
  readonly config?: string;
  readonly stage: string;
  /** Address both servers listen on. */
  readonly host: string;
  /** The HTTP API's port. */
  readonly httpPort: number;
  /** The Lambda Invoke API's port. */
  readonly lambdaPort: number;
  /** `--param` values (`serverless.yml` params). */
  readonly params: Readonly<Record<string, string>>;
  /** More environment for the framework's process (and its plugins). */
  readonly env?: Readonly<Record<string, string>>;
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

/** serverless-offline, running: what `dev` needs of it (tests hand `dev` a fake). */
export interface LocalOffline {
  /** Resolves when it has exited, however it ended. */
  readonly exited: Promise<OfflineExit>;
  /** Process id, also the id of its process group. */
  readonly pid: number | undefined;
  /** Resolves once it listens; throws when it exits first or after `timeoutMs`. */
  waitReady(timeoutMs: number): Promise<void>;
  /** Stops it and whatever it started. */
  stop(): Promise<OfflineExit>;
  /** Kills it at once (a second Ctrl-C). */
  kill(): void;
}

/** serverless-offline, running. */
export class OfflineProcess implements LocalOffline {
  /** Resolves when the child has exited, however it ended. */
  readonly exited: Promise<OfflineExit>;
  readonly #child: ChildProcess;
  readonly #options: OfflineOptions;
  #exit: OfflineExit | undefined;
  /** The framework said it has no `offline` command: serverless-offline is not a plugin of it. */
  #noOfflineCommand = false;

  private constructor(options: OfflineOptions) {
    this.#options = options;
    const args = [
      serverlessBin(options.cwd),
      'offline',
      'start',
      ...(options.config && options.config !== 'serverless.yml'
        ? ['--config', options.config]
        : []),
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
        ...options.env,
        ...LOCAL_AWS_ENV,
        // serverless-offline copies every AWS_* variable into the functions, and the AWS SDK
        // reads this one as the Lambda endpoint: the dispatcher (and a poller, if one ran)
        // invokes the task functions here instead of the real AWS Lambda.
        AWS_ENDPOINT_URL_LAMBDA: `http://${options.host}:${options.lambdaPort}`,
        FORCE_COLOR: '0',
      },
    });
    const onLine = (line: string) => {
      if (/command "offline start" not found/.test(line)) this.#noOfflineCommand = true;
      options.onLine(line);
    };
    relayLines(this.#child.stdout, onLine);
    relayLines(this.#child.stderr, onLine);
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

  /**
   * Starts `osls offline start` in `options.cwd`.
   *
   * @throws Error when neither the service nor this package has osls (or Serverless) installed
   */
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
    const hint = this.#noOfflineCommand
      ? ': it is not among the plugins of the service (add `- serverless-offline` under `plugins` in its serverless.yml, and `npm i -D serverless-offline`)'
      : '';
    throw new Error(
      `serverless-offline exited (${signal ?? `code ${code}`}) before it was ready${hint}`,
    );
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

/**
 * The Serverless Framework's command-line script: the service's own `osls` (or `serverless`,
 * which may be osls under another name), else the `osls` installed next to this package.
 *
 * @throws Error naming what to install when there is none
 */
export function serverlessBin(serviceDir: string): string {
  const candidates: [string, string][] = [
    [path.join(serviceDir, 'package.json'), 'osls'],
    [path.join(serviceDir, 'package.json'), 'serverless'],
    [fileURLToPath(import.meta.url), 'osls'],
  ];
  for (const [from, name] of candidates) {
    let manifest: string;
    try {
      manifest = createRequire(from).resolve(`${name}/package.json`);
    } catch {
      // Not installed there: the next candidate may be.
      continue;
    }
    const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as {
      bin?: string | Record<string, string>;
    };
    const script = typeof bin === 'string' ? bin : (bin?.[name] ?? bin?.serverless);
    if (script) return path.join(path.dirname(manifest), script);
  }
  throw new Error(
    `serverless-offline runs through the Serverless Framework, which ${serviceDir} does not have: npm i -D osls serverless-offline`,
  );
}

/**
 * `<service>-<stage>-`: the prefix serverless-offline (and the framework) gives function names,
 * read from the configuration's `service:` line (`service: name` or `service:\n  name: name`).
 *
 * @param config - the configuration file, relative to `cwd` @defaultValue `serverless.yml`
 * @throws when the file cannot be read or has no literal service name
 */
export function functionPrefix(cwd: string, stage: string, config = 'serverless.yml'): string {
  const file = path.resolve(cwd, config);
  const text = readFileSync(file, 'utf8');
  const service =
    /^service:[ \t]*['"]?([A-Za-z0-9-]+)['"]?[ \t]*(?:#.*)?$/m.exec(text)?.[1] ??
    /^service:[ \t]*\r?\n[ \t]+name:[ \t]*['"]?([A-Za-z0-9-]+)['"]?[ \t]*(?:#.*)?$/m.exec(
      text,
    )?.[1];
  if (!service) throw new Error(`no literal "service:" name in ${file}`);
  return `${service}-${stage}-`;
}

/** One HTTP route serverless-offline announced. */
export interface OfflineRoute {
  readonly method: string;
  /** As announced: `http://127.0.0.1:3000/events/{id}`. */
  readonly url: string;
}

/**
 * Reads the routes out of the box serverless-offline prints before it is ready
 * (`│   POST | http://127.0.0.1:3000/events   │`, a long URL wrapped onto the next line). Its
 * own Lambda-invoke routes (`/2015-03-31/functions/…/invocations`) are left out.
 */
export function routeCollector(): { add(line: string): void; routes(): OfflineRoute[] } {
  const routes: OfflineRoute[] = [];
  let waiting: string | null = null;
  return {
    add(line) {
      const cell = /│\s*(.*?)\s*│\s*$/.exec(line)?.[1];
      if (cell === undefined) return;
      const route = /^([A-Z]+)\s*\|\s*(\S*)$/.exec(cell);
      const method = route?.[1] ?? waiting;
      const url = route ? route[2] : /^https?:\/\/\S+$/.test(cell) ? cell : undefined;
      waiting = route && !route[2] ? (route[1] ?? null) : null;
      if (!method || !url) return;
      if (!url.includes('/2015-03-31/functions/')) routes.push({ method, url });
    },
    routes: () => [...routes],
  };
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

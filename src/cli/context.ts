/**
 * Everything a command touches outside its arguments: output streams, the terminal, the
 * environment, signals, the clock, and the factories of brokers, Lambda clients, cron locks and
 * serverless-offline. `processContext()` binds them to this process; tests pass fakes.
 */
import { createServer } from 'node:net';
import { createInterface } from 'node:readline/promises';
import type { Broker } from '../brokers/broker.js';
import type { CreateBrokerOptions } from '../brokers/create-broker.js';
import { type BrokerConfigInput, parseBrokerConfig } from '../config/broker-config.js';
import type { TickLock } from '../lambda/cron-handler.js';
import type { LambdaInvoker } from '../lambda/lambda-executor.js';
import { type LoadedApp, loadApp } from './app-loader.js';
import { EXIT_CODES } from './exit-codes.js';
import { lazyBroker, lazyTickLock } from './lazy-broker.js';
import type { LocalOffline, OfflineOptions } from './local-offline.js';

/**
 * What `dev` runs on this machine besides the broker. Loaded on first use: the other commands
 * start without the AWS SDK.
 */
export interface OfflineServices {
  /** Starts serverless-offline. @throws Error when no Serverless Framework is installed */
  start(options: OfflineOptions): Promise<LocalOffline>;
  /** A Lambda client for serverless-offline's Invoke API at `endpoint`. */
  lambdaClient(endpoint: string): Promise<LambdaInvoker>;
  /** Something accepts connections on `host:port`. */
  isListening(host: string, port: number): Promise<boolean>;
  /** A port on `host` nothing listens on now, picked by the system. */
  freePort(host: string): Promise<number>;
}

/** What a command may use besides its options. */
export interface CliContext {
  /** Results: ids, tables, JSON, one line per settled message or cron tick. */
  readonly stdout: (text: string) => void;
  /** Everything for a person only: banners, warnings, progress, errors. */
  readonly stderr: (text: string) => void;
  /** Standard input is a terminal (a person can be asked). */
  readonly stdinIsTTY: boolean;
  /** Standard error is a terminal (progress may redraw one line). */
  readonly stderrIsTTY: boolean;
  /** Standard output is a terminal (the worker prints human lines, else JSON). @defaultValue unknown */
  readonly stdoutIsTTY?: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative `--app` paths are resolved from. */
  readonly cwd: string;
  /** Asks a question on the terminal and resolves with the answer. */
  prompt(question: string): Promise<string>;
  /**
   * Calls `handler` on the first SIGINT or SIGTERM (stop taking work, settle, return). A second
   * one, a second or more later, forces the process out (exit 130) after `onForce` ran; one
   * within the second is the same Ctrl-C delivered twice (by the terminal and by `npm`).
   *
   * @returns a function that removes the handler
   */
  onShutdown(handler: (signal: string) => void, onForce?: () => void): () => void;
  /** Imports the app module (`--app`, else `SERVERLESS_CELERY_APP`, else the demo app). */
  loadApp(spec: string | undefined): Promise<LoadedApp>;
  createBroker(config: BrokerConfigInput, options: CreateBrokerOptions): Broker;
  /** A Lambda client; `endpoint` overrides AWS's (a local emulator). */
  lambdaClient(endpoint: string | undefined): Promise<LambdaInvoker>;
  /** The per-tick lock of `cron`. */
  tickLock(url: string): TickLock;
  /** serverless-offline and its ports, for `dev`. */
  readonly offline: OfflineServices;
  /** Clock, Unix ms. */
  now(): number;
  /** Waits `ms`, or less when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The context of this process. A second SIGINT/SIGTERM exits at once with 130: what the worker
 * holds is then restored by the broker (Redis after the visibility timeout, RabbitMQ at once).
 */
export function processContext(): CliContext {
  const env = process.env;
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdinIsTTY: process.stdin.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    env,
    cwd: process.cwd(),
    async prompt(question) {
      const terminal = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await terminal.question(question);
      } finally {
        terminal.close();
      }
    },
    onShutdown(handler, onForce) {
      let firstAt: number | undefined;
      const listener = (signal: NodeJS.Signals) => {
        if (firstAt !== undefined) {
          // A terminal's Ctrl-C under `npm run`/`npm start` arrives twice at once: directly (we
          // are in its foreground group) and forwarded by npm. Only a later one means "force".
          if (Date.now() - firstAt < REPEAT_MS) return;
          process.stderr.write(
            `${signal} again: exiting now; held messages return to their queue once the broker notices\n`,
          );
          onForce?.();
          process.exit(EXIT_CODES.interrupted);
        }
        firstAt = Date.now();
        handler(signal);
      };
      process.on('SIGINT', listener);
      process.on('SIGTERM', listener);
      return () => {
        process.off('SIGINT', listener);
        process.off('SIGTERM', listener);
      };
    },
    loadApp: (spec) => loadApp(spec, { cwd: process.cwd(), env }),
    createBroker: (config, options) => lazyBroker(parseBrokerConfig(config), options),
    lambdaClient: (endpoint) => defaultLambdaClient(endpoint, env),
    tickLock: lazyTickLock,
    offline: {
      start: async (options) => (await import('./local-offline.js')).OfflineProcess.start(options),
      lambdaClient: async (endpoint) =>
        (await import('./local-offline.js')).offlineLambdaClient(endpoint),
      isListening: async (host, port) =>
        (await import('./local-offline.js')).isListening(host, port),
      freePort,
    },
    now: Date.now,
    sleep,
  };
}

/** A second signal within this many ms is the first one delivered twice. */
const REPEAT_MS = 1_000;

/** A port on `host` nothing listens on now, as the system picks one. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error(`no port assigned on ${host}`)),
      );
    });
  });
}

/** Waits `ms`; resolves early (never rejects) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

/**
 * A `LambdaClient`, loaded only when `--invoke lambda` needs it. A local emulator (an endpoint on
 * the loopback address) checks neither region nor credentials, so placeholders stand in for
 * missing ones; any other endpoint gets the SDK's usual resolution.
 */
async function defaultLambdaClient(
  endpoint: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): Promise<LambdaInvoker> {
  const { LambdaClient } = await import('@aws-sdk/client-lambda');
  const local = endpoint !== undefined && LOOPBACK.test(hostOf(endpoint));
  return new LambdaClient({
    ...(endpoint ? { endpoint } : {}),
    ...(local && !env.AWS_REGION && !env.AWS_DEFAULT_REGION ? { region: 'us-east-1' } : {}),
    ...(local && !env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    // Not a URL: the SDK refuses it with its own message when the first invoke is made.
    return '';
  }
}

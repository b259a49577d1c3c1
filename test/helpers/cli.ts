/**
 * Helpers for the CLI's tests: a {@link CliContext} that keeps what is written and lets the test
 * answer prompts, send the shutdown signal and move the clock; a serverless-offline stand-in for
 * `dev`; and, for integration tests, the real CLI run as a child process
 * (`node src/cli/bin.mjs …`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Broker } from '../../src/brokers/broker.js';
import type { LoadedApp } from '../../src/cli/app-loader.js';
import type { CliContext, OfflineServices } from '../../src/cli/context.js';
import type { LocalOffline, OfflineExit, OfflineOptions } from '../../src/cli/local-offline.js';
import type { Registry } from '../../src/core/registry.js';
import type { TickLock } from '../../src/lambda/cron-handler.js';

/** A context whose output is kept and whose signals, prompts and clock the test drives. */
export interface TestContext extends CliContext {
  /** Everything written to stdout. */
  out(): string;
  /** Everything written to stderr. */
  err(): string;
  /** Questions asked, in order. */
  readonly questions: string[];
  /** Brokers opened, in order. */
  readonly brokers: Broker[];
  /** Broker configs asked for, in order. */
  readonly brokerConfigs: unknown[];
  /** Lambda endpoints asked for, in order. */
  readonly lambdaEndpoints: (string | undefined)[];
  /** Sends SIGTERM to whatever registered for shutdown. */
  shutdown(signal?: string): void;
  /** Runs what registered to be run before a forced exit (a second Ctrl-C). */
  force(): void;
}

/** What a {@link testContext} uses; everything has a default. */
export interface TestContextOptions {
  readonly registry?: Registry;
  /** The broker every `createBroker` returns. */
  readonly broker?: Broker;
  readonly env?: Record<string, string | undefined>;
  readonly stdinIsTTY?: boolean;
  readonly stderrIsTTY?: boolean;
  /** Answers to prompts, in order. @defaultValue `n` */
  readonly answers?: string[];
  readonly lambdaClient?: CliContext['lambdaClient'];
  readonly tickLock?: (url: string) => TickLock;
  /** Start of the fake clock, Unix ms. @defaultValue the real time */
  readonly start?: number;
  /** Called on every `sleep`, after the clock moved (a test may stop the loop from here). */
  readonly onSleep?: (now: number) => void;
  /** Replaces `loadApp`. */
  readonly loadApp?: CliContext['loadApp'];
  /** serverless-offline and its ports. @defaultValue {@link fakeOffline}'s defaults */
  readonly offline?: OfflineServices;
}

/**
 * A context for unit tests. The clock is fake: `sleep(ms)` moves it by `ms` at once.
 */
export function testContext(options: TestContextOptions = {}): TestContext {
  let stdout = '';
  let stderr = '';
  let clock = options.start ?? Date.now();
  const answers = [...(options.answers ?? [])];
  const questions: string[] = [];
  const brokers: Broker[] = [];
  const brokerConfigs: unknown[] = [];
  const lambdaEndpoints: (string | undefined)[] = [];
  const handlers = new Set<(signal: string) => void>();
  const forces = new Set<() => void>();
  const app: LoadedApp | undefined = options.registry
    ? { module: 'test-app', registry: options.registry }
    : undefined;
  return {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    out: () => stdout,
    err: () => stderr,
    stdinIsTTY: options.stdinIsTTY ?? false,
    stderrIsTTY: options.stderrIsTTY ?? false,
    env: options.env ?? {},
    cwd: process.cwd(),
    questions,
    brokers,
    brokerConfigs,
    lambdaEndpoints,
    async prompt(question) {
      questions.push(question);
      return answers.shift() ?? 'n';
    },
    onShutdown(handler, onForce) {
      handlers.add(handler);
      if (onForce) forces.add(onForce);
      return () => {
        handlers.delete(handler);
        if (onForce) forces.delete(onForce);
      };
    },
    shutdown(signal = 'SIGTERM') {
      for (const handler of [...handlers]) handler(signal);
    },
    force() {
      for (const onForce of [...forces]) onForce();
    },
    loadApp:
      options.loadApp ??
      (async () => {
        if (!app) throw new Error('testContext: no registry given');
        return app;
      }),
    createBroker(config) {
      if (!options.broker) throw new Error('testContext: no broker given');
      brokerConfigs.push(config);
      brokers.push(options.broker);
      return options.broker;
    },
    async lambdaClient(endpoint) {
      lambdaEndpoints.push(endpoint);
      if (!options.lambdaClient) throw new Error('testContext: no Lambda client given');
      return options.lambdaClient(endpoint);
    },
    tickLock(url) {
      if (!options.tickLock) throw new Error('testContext: no tick lock given');
      return options.tickLock(url);
    },
    offline: options.offline ?? fakeOffline(),
    now: () => clock,
    async sleep(ms) {
      clock += Math.max(0, ms);
      options.onSleep?.(clock);
      // A real turn of the event loop, so that a loop under test never starves the test.
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

/** Options of {@link fakeOffline}. */
export interface FakeOfflineOptions {
  /** The Lambda endpoint's client. */
  readonly lambdaClient?: OfflineServices['lambdaClient'];
  /** Ports something listens on. @defaultValue none */
  readonly listening?: readonly number[];
  /** Lines it prints before it is ready (a route box, say). */
  readonly lines?: readonly string[];
  /** Makes `waitReady` fail with this message, as a serverless-offline that exited early. */
  readonly failReady?: string;
}

/** serverless-offline as `dev` sees it, recording how it was started and stopped. */
export interface FakeOffline extends OfflineServices {
  /** Options of every start, in order. */
  readonly started: OfflineOptions[];
  /** How it was ended: `stop`, `kill`, or `exit` (on its own). */
  readonly ended: string[];
  /** Makes the running one exit on its own. */
  exit(code: number): void;
}

/**
 * A serverless-offline stand-in: ready at once, exits when stopped or killed (or when the test
 * says); `freePort` hands out 40000, 40001, ….
 */
export function fakeOffline(options: FakeOfflineOptions = {}): FakeOffline {
  const started: OfflineOptions[] = [];
  const ended: string[] = [];
  let exitRunning: ((code: number) => void) | undefined;
  let nextPort = 40_000;
  return {
    started,
    ended,
    exit: (code) => exitRunning?.(code),
    async start(offlineOptions) {
      started.push(offlineOptions);
      for (const line of options.lines ?? []) offlineOptions.onLine(line);
      let resolveExit: (exit: OfflineExit) => void = () => {};
      const exited = new Promise<OfflineExit>((resolve) => {
        resolveExit = resolve;
      });
      const end = (how: string, code: number | null) => {
        if (ended.length < started.length) ended.push(how);
        resolveExit({ code, signal: null });
      };
      exitRunning = (code) => end('exit', code);
      const running: LocalOffline = {
        exited,
        pid: 4242,
        async waitReady() {
          if (options.failReady) throw new Error(options.failReady);
        },
        async stop() {
          end('stop', 0);
          return exited;
        },
        kill: () => end('kill', null),
      };
      return running;
    },
    async lambdaClient(endpoint) {
      if (!options.lambdaClient) throw new Error('fakeOffline: no Lambda client given');
      return options.lambdaClient(endpoint);
    },
    isListening: async (_host, port) => (options.listening ?? []).includes(port),
    freePort: async () => nextPort++,
  };
}

/** A {@link TickLock} in memory, shared by every "process" given the same instance. */
export function memoryTickLock(): TickLock & { readonly keys: Map<string, number> } {
  const keys = new Map<string, number>();
  return {
    keys,
    async claim(key, ttlSeconds) {
      if (keys.has(key)) return false;
      keys.set(key, ttlSeconds);
      return true;
    },
    async release(key) {
      keys.delete(key);
    },
  };
}

/** The repository's root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The CLI's entry point. */
export const BIN = path.join(ROOT, 'src/cli/bin.mjs');
/** The CLI tests' app module. */
export const CLI_APP = path.join(ROOT, 'test/fixtures-app/cli-app.ts');

/** What a finished CLI process did. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli} and {@link startCli}. */
export interface CliRunOptions {
  /** Added to this process's environment. */
  readonly env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed (never a terminal). */
  readonly input?: string;
}

/** Runs `serverless-celery …` to the end. */
export async function runCli(
  args: readonly string[],
  options: CliRunOptions = {},
): Promise<CliResult> {
  const child = startCli(args, options);
  return child.exited;
}

/** A running CLI process. */
export interface RunningCli {
  readonly child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout has `count` lines matching `pattern`; rejects after `timeoutMs`. */
  waitForLines(pattern: RegExp, count: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves when the process exits. */
  readonly exited: Promise<CliResult>;
  /** Sends `signal` (to this child only) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<CliResult>;
}

/** Starts `serverless-celery …` in the background. */
export function startCli(args: readonly string[], options: CliRunOptions = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    // The human lines these tests read; a pipe would otherwise get JSON (--log-format).
    env: { LOG_FORMAT: 'text', ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin?.end(options.input ?? '');
  const exited = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  const matching = (pattern: RegExp) => stdout.split('\n').filter((line) => pattern.test(line));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    waitForLines(pattern, count, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const lines = matching(pattern);
          if (lines.length < count) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve(lines);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `no ${count} lines matching ${pattern} within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
            ),
          );
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * The benchmarks' shared harness: where they run (their own Redis database and RabbitMQ vhost),
 * timing and statistics, child processes that report over stdout, cleanup of only what a
 * benchmark created, and the result files the runner reads.
 *
 * Every rate is a per-second rate measured inside the process that does the work (connection
 * set-up and interpreter start-up excluded), and every figure is the median of three runs unless
 * its note says otherwise.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { clusterUrl, deleteClusterKeys } from './redis-cluster.js';

/** The bench/ folder. */
export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
/**
 * Where the runner writes latest.json and the chart; each script writes `parts/<name>.json`.
 * BENCH_RESULTS_DIR elsewhere keeps a trial run from replacing the figures of the last real one.
 * @defaultValue bench/results
 */
export const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? join(BENCH_DIR, 'results');
/** The Redis database every benchmark uses, and nothing else should. @defaultValue db 13 */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/13';
/** The RabbitMQ vhost the benchmarks create, use and delete. */
export const AMQP_VHOST = process.env.BENCH_AMQP_VHOST ?? 'sc-bench';
/** Broker URL of {@link AMQP_VHOST}. */
export const AMQP_URL = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(AMQP_VHOST)}`;
/** Debian's python3, which has Celery 5.2.6 (a pyenv python3 first on PATH does not). */
export const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
/** The task every peer registers: it does nothing (latency runs read `sent` from its kwargs). */
export const NOOP_TASK = 'bench.noop';
/** Runs per figure; the median is reported. */
export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Scales every N (0.1 for a quick smoke run). */
export const SCALE = Number(process.env.BENCH_SCALE ?? 1);

const run = promisify(execFile);

/**
 * The brokers a figure can be measured on, by URL. `redis-cluster` is the benchmarks' own
 * three-master cluster (redis-cluster.ts), whose URL is read when asked for: it starts after
 * this module loads, and its children learn it from their environment.
 */
export const BROKERS = {
  redis: REDIS_URL,
  amqp: AMQP_URL,
  get 'redis-cluster'(): string {
    return clusterUrl();
  },
} as const;
/** `redis`, `amqp` or `redis-cluster`. */
export type BrokerName = keyof typeof BROKERS;

/** Who a figure is about. */
export type System = 'ours' | 'celery' | 'celery-node' | 'bullmq' | 'floor';

/** One reported figure. */
export interface Figure {
  /** Stable key, e.g. `drain.redis.ours`. */
  readonly id: string;
  readonly system: System;
  readonly broker: BrokerName | 'none';
  /** What was measured, for the table: `drain, concurrency 50`. */
  readonly label: string;
  /** `default` settings, the peer's `best` settings, or `only` when there is one way. */
  readonly settings: 'default' | 'best' | 'only';
  readonly unit: 'msg/s' | 'tasks/s' | 'ms' | 'µs' | 'KiB' | 's';
  /** The median of the samples. */
  readonly value: number;
  readonly samples: readonly number[];
  /** Messages per run. */
  readonly n?: number;
  /** p99 next to a p50, where the figure is a latency. */
  readonly p99?: number;
  readonly note?: string;
}

/** What a measurement script writes: its figures and how long it took. */
export interface Part {
  readonly script: string;
  readonly startedAt: string;
  readonly seconds: number;
  readonly figures: Figure[];
}

/** Wall-clock milliseconds with microsecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (`p` in 0–100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** `n` scaled by {@link SCALE}, at least 100. */
export function scaled(n: number): number {
  return Math.max(100, Math.round(n * SCALE));
}

/** Rounds for display: 3 significant digits below 100, integers above. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  return Math.abs(value) >= 100 ? Math.round(value) : Number(value.toPrecision(3));
}

/**
 * Measures `sample` {@link RUNS} times and returns a figure with the median.
 *
 * @param sample - one run; returns its value (a rate, a time…)
 */
export async function measure(
  figure: Omit<Figure, 'value' | 'samples'>,
  sample: (index: number) => Promise<number>,
): Promise<Figure> {
  const samples: number[] = [];
  for (let index = 0; index < RUNS; index++) samples.push(round(await sample(index)));
  const result = { ...figure, value: median(samples), samples };
  log(`${result.id}: ${result.value} ${result.unit} (${samples.join(', ')})`);
  return result;
}

/** Progress on stderr (stdout is the runner's channel). */
export function log(line: string): void {
  process.stderr.write(`  ${line}\n`);
}

/**
 * Runs one measurement script's body and writes `results/parts/<script>.json`. A failing
 * measurement is reported and skipped; the others still run.
 */
export async function runScript(
  script: string,
  body: (add: (figure: Figure | Promise<Figure>) => Promise<void>) => Promise<void>,
): Promise<void> {
  const started = Date.now();
  const figures: Figure[] = [];
  let failed = 0;
  process.stderr.write(`${script}\n`);
  const add = async (figure: Figure | Promise<Figure>) => {
    try {
      figures.push(await figure);
    } catch (error) {
      failed++;
      log(`FAILED: ${(error as Error).stack ?? error}`);
    }
  };
  try {
    await body(add);
  } finally {
    // Run alone, a script removes the vhost it may have created; under the runner, the runner does.
    if (!process.env.BENCH_RUNNER) await deleteVhost();
    const part: Part = {
      script,
      startedAt: new Date(started).toISOString(),
      seconds: Math.round((Date.now() - started) / 1000),
      figures,
    };
    await mkdir(join(RESULTS_DIR, 'parts'), { recursive: true });
    await writeFile(
      join(RESULTS_DIR, 'parts', `${script}.json`),
      `${JSON.stringify(part, null, 2)}\n`,
    );
    log(`${figures.length} figure(s), ${failed} failed, ${part.seconds} s`);
  }
  if (failed > 0) process.exitCode = 1;
}

/** Reads a script's part, if it ran. */
export async function readPart(script: string): Promise<Part | undefined> {
  try {
    return JSON.parse(await readFile(join(RESULTS_DIR, 'parts', `${script}.json`), 'utf8')) as Part;
  } catch {
    // Not run (or not yet): the runner reports it as missing.
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes. Every peer runs in a process of its own and reports with lines on stdout
// that start with REPORT_MARK followed by JSON; everything else it prints is kept for errors.

/** The prefix of a child's report lines. */
export const REPORT_MARK = '@@bench ';

/** Prints a report line (in a child). */
export function report(value: Record<string, unknown>): void {
  process.stdout.write(`${REPORT_MARK}${JSON.stringify(value)}\n`);
}

/** A running child process that reports. */
export interface Child {
  readonly pid: number;
  /** Resolves with the next report whose `event` is `event`. */
  next(event: string, timeoutMs: number): Promise<Record<string, unknown>>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
  /** Ends the process group (the child and any pool processes it forked). */
  stop(): Promise<void>;
}

/** The command that runs a TypeScript file of bench/ with tsx. */
export function tsxCommand(file: string, args: readonly string[] = []): [string, string[]] {
  return [process.execPath, ['--import', 'tsx', join(BENCH_DIR, file), ...args]];
}

/**
 * Starts a child in a process group of its own, so that {@link Child.stop} also ends the pool
 * processes it forks (Celery prefork) and nothing else.
 */
export function startChild(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Child {
  const child = spawn(command, args, {
    cwd: BENCH_DIR,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${command}`);
  const reports: Record<string, unknown>[] = [];
  const waiting = new Set<() => void>();
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
  };
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const mark = line.indexOf(REPORT_MARK);
      if (mark >= 0) {
        reports.push(JSON.parse(line.slice(mark + REPORT_MARK.length)) as Record<string, unknown>);
        for (const wake of waiting) wake();
      } else keep(line);
      newline = buffered.indexOf('\n');
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) if (line) keep(line);
  });
  let code: number | null | undefined;
  // 'close', not 'exit': the last lines a child printed may still be in the pipe at its exit.
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (exitCode) => {
      code = exitCode;
      for (const wake of waiting) wake();
      resolve(exitCode);
    }),
  );
  const next = (event: string, timeoutMs: number) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const index = reports.findIndex((entry) => entry.event === event);
        if (index >= 0) {
          done();
          resolve(reports.splice(index, 1)[0] as Record<string, unknown>);
        } else if (code !== undefined) {
          done();
          reject(new Error(`${command} exited (${code}) before '${event}':\n${tail.join('\n')}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no '${event}' from ${command} in ${timeoutMs} ms:\n${tail.join('\n')}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        waiting.delete(check);
      };
      waiting.add(check);
      check();
    });
  const stop = async () => {
    if (code !== undefined) return;
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
    // Pool processes may outlive their parent by a moment.
    signalGroup(pid, 'SIGKILL');
  };
  return { pid, next, exited, stop };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone already: nothing left to stop.
  }
}

/**
 * Runs a child to completion and returns its `result` report (a publisher: it connects, times
 * its own work and exits).
 */
export async function runChild(
  [command, args]: [string, string[]],
  env: Record<string, string> = {},
  timeoutMs = 180_000,
): Promise<Record<string, unknown>> {
  const child = startChild(command, args, env);
  try {
    const result = await child.next('result', timeoutMs);
    await child.exited;
    return result;
  } finally {
    await child.stop();
  }
}

// ---------------------------------------------------------------------------------------------
// Brokers: the vhost, and cleanup of what the benchmarks create.

/** A client on the benchmarks' database. */
export function benchRedis(): Redis {
  return new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
}

/**
 * Deletes the keys matching `patterns` in the benchmarks' database: queue lists, kombu's
 * bookkeeping, BullMQ's keys and result records the peers leave behind.
 */
export async function deleteKeys(redis: Redis, patterns: readonly string[]): Promise<number> {
  let deleted = 0;
  for (const pattern of patterns) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

/** Keys any benchmark may create in its database; every queue is named `bench.*`. */
export const BENCH_KEY_PATTERNS = [
  'bench.*',
  '_kombu.binding.bench.*',
  '_sc.*bench.*',
  'unacked',
  'unacked_index',
  'unacked_mutex',
  'celery-task-meta-*',
  'bench-bull:*',
  'bench:*',
  // A Celery worker's event and control bindings.
  '_kombu.binding.celeryev',
  '_kombu.binding.celery.pidbox',
] as const;

async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args], { timeout: 60_000 });
  return stdout;
}

/** Creates the benchmarks' vhost (guest may do anything in it). */
export async function createVhost(): Promise<void> {
  const vhosts = await rabbitmqctl('list_vhosts');
  if (!vhosts.split('\n').some((line) => line.trim() === AMQP_VHOST)) {
    await rabbitmqctl('add_vhost', AMQP_VHOST);
  }
  await rabbitmqctl('set_permissions', '-p', AMQP_VHOST, 'guest', '.*', '.*', '.*');
}

/** Deletes the benchmarks' vhost with every queue in it. */
export async function deleteVhost(): Promise<void> {
  const vhosts = await rabbitmqctl('list_vhosts');
  if (vhosts.split('\n').some((line) => line.trim() === AMQP_VHOST)) {
    await rabbitmqctl('delete_vhost', AMQP_VHOST);
  }
}

/** Sleeps. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `send` `n` times, the i-th `i × intervalMs` after the first: the latency senders' pacing.
 * A call that comes due while the one before is still out goes as soon as that one returns.
 */
export async function paced(
  n: number,
  intervalMs: number,
  send: () => unknown | Promise<unknown>,
): Promise<void> {
  const started = nowMs();
  for (let index = 0; index < n; index++) {
    const wait = started + index * intervalMs - nowMs();
    if (wait > 0) await sleep(wait);
    await send();
  }
}

/** Polls `probe` every `everyMs` until it returns true or `timeoutMs` passes. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Deletes queues of the benchmarks' vhost (their dead-letter queues too). */
export async function deleteAmqpQueues(names: readonly string[]): Promise<void> {
  const connection = await connect(AMQP_URL);
  try {
    const channel = await connection.createChannel();
    for (const name of names) {
      await channel.deleteQueue(name);
      await channel.deleteQueue(`${name}.dlq`);
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}

/**
 * Removes whatever a run left of `queue` on `broker`, and the benchmarks' keys in Redis (peers
 * on RabbitMQ keep results there too) and, for a cluster case, in the cluster.
 */
export async function cleanQueue(broker: BrokerName, queue: string): Promise<void> {
  if (broker === 'amqp') await deleteAmqpQueues([queue]);
  if (broker === 'redis-cluster') await deleteClusterKeys(BENCH_KEY_PATTERNS);
  const redis = benchRedis();
  try {
    await deleteKeys(redis, BENCH_KEY_PATTERNS);
  } finally {
    redis.disconnect();
  }
}

/** A receiver of Celery events (see {@link listenToEvents}). */
export interface EventListener {
  /** Messages heard so far (an event, or a list of them). */
  heard(): number;
  stop(): Promise<void>;
}

/**
 * A receiver of the Celery events on `url`, as Flower's would be: a pattern subscription to
 * `/<db>.celeryev/*` on Redis; on RabbitMQ an exclusive queue bound to `celeryev` with `#`, its
 * events living 5 s (Celery's `event_queue_ttl`). Events nobody listens to cost the broker less,
 * so a benchmark of sending them listens.
 */
export async function listenToEvents(url: string): Promise<EventListener> {
  let heard = 0;
  const hear = () => {
    heard += 1;
  };
  if (url.startsWith('redis')) {
    const subscriber = new Redis(url);
    subscriber.on('pmessage', hear);
    const db = new URL(url).pathname.replace(/^\//, '') || '0';
    await subscriber.psubscribe(`/${db}.celeryev/*`);
    return { heard: () => heard, stop: async () => void (await subscriber.quit()) };
  }
  const connection = await connect(url);
  const channel = await connection.createChannel();
  await channel.assertExchange('celeryev', 'topic', { durable: true, autoDelete: false });
  const { queue } = await channel.assertQueue('', { exclusive: true, messageTtl: 5000 });
  await channel.bindQueue(queue, 'celeryev', '#');
  await channel.consume(queue, hear, { noAck: true });
  return { heard: () => heard, stop: () => connection.close() };
}

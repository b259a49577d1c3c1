/**
 * Drives the real Python Celery scripts of `shared/celery-interop/` from tests: `send.py`, a
 * Python producer (`app.send_task`), and `worker.py`, a real Celery worker that records every
 * execution. Broker-agnostic: pass a `redis://` or `amqp://` URL; the worker records to a JSON
 * lines file of its own, so reading records needs no broker.
 *
 * Every worker started here is tracked: call {@link stopCeleryWorkers} in `afterEach` so a
 * failing test never leaves one running. Workers are stopped by their own pid, never by name.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

/** An interpreter that can `import celery` (Debian's, with Celery 5.2.6). */
export const PYTHON = process.env.PY ?? '/usr/bin/python3';

/** The folder of the Python interop scripts, shared with the other tools. */
export const CELERY_INTEROP_DIR = path.resolve(
  import.meta.dirname,
  '../../../shared/celery-interop',
);

/** Options of {@link sendCeleryTasks}: `send.py`'s flags. */
export interface CelerySendOptions {
  readonly broker: string;
  readonly queue: string;
  /** @defaultValue `sentry.tasks.do_work` */
  readonly task?: string;
  readonly args?: readonly unknown[];
  readonly kwargs?: Record<string, unknown>;
  /** Seconds; Celery turns it into an absolute `eta`. */
  readonly countdown?: number;
  /** Sent as ISO 8601 with an offset. */
  readonly eta?: Date;
  /** Seconds from now. */
  readonly expires?: number;
  readonly priority?: number;
  /** Task id (only with `count` 1). */
  readonly taskId?: string;
  /** How many identical messages. @defaultValue 1 */
  readonly count?: number;
  /** RabbitMQ `x-max-priority`; must match the worker's. */
  readonly maxPriority?: number;
}

/** One message `send.py` sent, as it prints it. */
export interface CelerySentTask {
  readonly id: string;
  readonly task: string;
  readonly options: Record<string, unknown>;
}

/**
 * Sends tasks with real Python Celery (`send.py`) and resolves once they are on the broker.
 *
 * @returns one entry per message sent, in sending order
 * @throws when the script fails (its stderr is in the error)
 */
export async function sendCeleryTasks(options: CelerySendOptions): Promise<CelerySentTask[]> {
  const args = [
    path.join(CELERY_INTEROP_DIR, 'send.py'),
    '--broker',
    options.broker,
    '--queue',
    options.queue,
    ...flag('--task', options.task),
    ...flag('--args', options.args && JSON.stringify(options.args)),
    ...flag('--kwargs', options.kwargs && JSON.stringify(options.kwargs)),
    ...flag('--countdown', options.countdown),
    ...flag('--eta', options.eta?.toISOString().replace('Z', '+00:00')),
    ...flag('--expires', options.expires),
    ...flag('--priority', options.priority),
    ...flag('--task-id', options.taskId),
    ...flag('--count', options.count),
    ...flag('--max-priority', options.maxPriority),
  ];
  const { stdout } = await promisify(execFile)(PYTHON, args, { timeout: 30_000 });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CelerySentTask);
}

function flag(name: string, value: string | number | undefined): string[] {
  return value === undefined ? [] : [name, String(value)];
}

/** `worker.py`'s record of one execution (`event: run`). */
export interface CeleryRunRecord {
  readonly event: 'run';
  readonly task: string;
  readonly id: string;
  readonly args: unknown[];
  readonly kwargs: Record<string, unknown>;
  readonly retries: number;
  /** As the worker's request has it: ISO 8601 or `null`. */
  readonly eta: string | null;
  readonly expires: string | null;
  readonly root_id: string | null;
  readonly parent_id: string | null;
  /** Group id of a group or chord member. */
  readonly group: string | null;
  readonly origin: string | null;
  readonly lang: string | null;
  readonly timelimit: [number | null, number | null] | null;
  readonly delivery_info: {
    readonly exchange: string;
    readonly routing_key: string;
    readonly priority: number | null;
    /** `true` when restored after a consumer died or shut down; `null` otherwise. */
    readonly redelivered: boolean | null;
  };
  readonly hostname: string;
  /** Unix seconds when the task body ran. */
  readonly recorded_at_unix: number;
}

/** `worker.py`'s record of how one execution ended (`event: outcome`). */
export interface CeleryOutcomeRecord {
  readonly event: 'outcome';
  readonly state: 'SUCCESS' | 'RETRY' | 'FAILURE';
  readonly id: string;
  readonly task: string;
  /** On FAILURE: the exception's class name. */
  readonly exception?: string;
  readonly recorded_at_unix: number;
}

/** Any record `worker.py` writes. */
export type CeleryRecord = CeleryRunRecord | CeleryOutcomeRecord;

/** Options of {@link startCeleryWorker}: `worker.py`'s flags. */
export interface CeleryWorkerOptions {
  readonly broker: string;
  readonly queue: string;
  /** Redis `visibility_timeout`, seconds. @defaultValue kombu's 3600 */
  readonly visibilityTimeout?: number;
  /** `default_retry_delay` of the tasks, seconds. @defaultValue 1 */
  readonly retryDelay?: number;
  /** RabbitMQ `x-max-priority`. */
  readonly maxPriority?: number;
  /** Node name. @defaultValue `sc-<random>@localhost` */
  readonly hostname?: string;
  /**
   * More `celery worker` arguments. @defaultValue {@link FAST_WORKER_ARGS}
   */
  readonly celeryArgs?: readonly string[];
  /** How long to wait for `ready.` in the log. @defaultValue 30000 */
  readonly readyTimeoutMs?: number;
  /** Celery `result_backend` URL (`worker.py --result-backend`). @defaultValue none */
  readonly resultBackend?: string;
  /**
   * Modules of `test/python/` the worker imports (`-I`), e.g. `workflow_app` for the `wf.*`
   * tasks; {@link TEST_PYTHON_DIR} is put on `PYTHONPATH`. @defaultValue none
   */
  readonly include?: readonly string[];
  /** The interpreter. @defaultValue {@link PYTHON} */
  readonly python?: string;
  /** More environment variables for the worker. */
  readonly env?: Readonly<Record<string, string>>;
}

/** This repository's Python test modules (`workflow_app.py`). */
export const TEST_PYTHON_DIR = path.resolve(import.meta.dirname, '../python');

/** Options of the waits on a worker. */
export interface WaitOptions {
  /** @defaultValue 30000 */
  readonly timeoutMs?: number;
  /** What is awaited, for the timeout message. */
  readonly what?: string;
}

/**
 * `celery worker` arguments that keep a test worker quick: no start-up sync or gossip with other
 * workers, no heartbeat events, and a prefetch of 4. With the interop app's prefetch of 1 and the
 * solo pool, kombu's Redis transport took one message per event-loop wake-up, about one every
 * 2 s with heartbeats and every 10 s without (measured); with 4 the queue drains at once.
 */
export const FAST_WORKER_ARGS = [
  '--without-mingle',
  '--without-gossip',
  '--without-heartbeat',
  '--prefetch-multiplier',
  '4',
] as const;

/** Workers not disposed of yet. */
const started = new Set<CeleryWorker>();

/** A running `worker.py` (solo pool: one process), its log and its records. */
export class CeleryWorker {
  readonly hostname: string;
  readonly recordFile: string;
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #exited: Promise<void>;
  #log = '';
  #exitCode: number | null = null;
  #exitSignal: NodeJS.Signals | null = null;
  #done = false;

  constructor(options: CeleryWorkerOptions) {
    this.hostname = options.hostname ?? `sc-${randomUUID().slice(0, 8)}@localhost`;
    this.#dir = mkdtempSync(path.join(tmpdir(), 'sc-celery-worker-'));
    this.recordFile = path.join(this.#dir, 'records.jsonl');
    const args = [
      path.join(CELERY_INTEROP_DIR, 'worker.py'),
      '--broker',
      options.broker,
      '--queue',
      options.queue,
      '--record-file',
      this.recordFile,
      '--hostname',
      this.hostname,
      ...flag('--visibility-timeout', options.visibilityTimeout),
      ...flag('--retry-delay', options.retryDelay),
      ...flag('--max-priority', options.maxPriority),
      ...flag('--result-backend', options.resultBackend),
      '--',
      ...(options.celeryArgs ?? FAST_WORKER_ARGS),
      // One option, comma-separated: Celery keeps only the last of several `-I`.
      ...(options.include?.length ? ['-I', options.include.join(',')] : []),
    ];
    const pythonPath = [TEST_PYTHON_DIR, process.env.PYTHONPATH].filter(Boolean).join(':');
    this.#child = spawn(options.python ?? PYTHON, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONPATH: pythonPath, ...options.env },
    });
    const append = (chunk: Buffer) => {
      this.#log += chunk.toString('utf8');
    };
    this.#child.stdout?.on('data', append);
    this.#child.stderr?.on('data', append);
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exitCode = code;
        this.#exitSignal = signal;
        this.#done = true;
        resolve();
      });
      this.#child.once('error', (error) => {
        this.#log += `\nspawn failed: ${error.message}`;
        this.#done = true;
        resolve();
      });
    });
  }

  /** Process id (the worker itself: the solo pool forks nothing). */
  get pid(): number {
    const { pid } = this.#child;
    if (pid === undefined) throw new Error(`worker ${this.hostname} did not start:\n${this.#log}`);
    return pid;
  }

  /** The process has exited. */
  get exited(): boolean {
    return this.#done;
  }

  /** Everything the worker printed (stdout and stderr). */
  log(): string {
    return this.#log;
  }

  /** Resolves once Celery logs `ready.`; rejects if the worker exits or times out first. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await this.#poll(() => this.#log.includes(' ready.'), {
      timeoutMs,
      what: 'the worker to be ready',
    });
  }

  /** Every record written so far, in order. */
  records(): CeleryRecord[] {
    if (!existsSync(this.recordFile)) return [];
    return readFileSync(this.recordFile, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as CeleryRecord);
  }

  /** The `run` records so far. */
  runs(): CeleryRunRecord[] {
    return this.records().filter((record): record is CeleryRunRecord => record.event === 'run');
  }

  /** The `outcome` records so far. */
  outcomes(): CeleryOutcomeRecord[] {
    return this.records().filter(
      (record): record is CeleryOutcomeRecord => record.event === 'outcome',
    );
  }

  /**
   * Polls the records until `predicate` holds.
   *
   * @returns the records that satisfied it
   * @throws on timeout or when the worker exits first, with the log's tail
   */
  async waitForRecords(
    predicate: (records: CeleryRecord[]) => boolean,
    options: WaitOptions = {},
  ): Promise<CeleryRecord[]> {
    let records: CeleryRecord[] = [];
    await this.#poll(
      () => {
        records = this.records();
        return predicate(records);
      },
      { what: 'worker records', ...options },
    );
    return records;
  }

  /**
   * Stops the worker with `signal` (SIGTERM is Celery's warm shutdown, which restores held
   * messages; SIGKILL is a crash) and waits for it to exit; SIGKILL after `timeoutMs`.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<void> {
    if (!this.#done && this.#child.pid !== undefined) {
      this.#child.kill(signal);
      const timer = setTimeout(() => {
        if (!this.#done) this.#child.kill('SIGKILL');
      }, timeoutMs);
      await this.#exited;
      clearTimeout(timer);
    }
  }

  /** Stops the worker if needed and removes its record file. */
  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.#dir, { recursive: true, force: true });
    started.delete(this);
  }

  async #poll(condition: () => boolean, options: WaitOptions): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      if (condition()) return;
      if (this.#done) {
        const how = `code ${this.#exitCode}, signal ${this.#exitSignal}`;
        const tail = this.#log.slice(-3000);
        throw new Error(`worker ${this.hostname} exited (${how}) before ${options.what}:\n${tail}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${options.what}:\n${this.#log.slice(-3000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/**
 * Starts `worker.py` on a queue and waits until it consumes.
 *
 * @example
 * const worker = await startCeleryWorker({ broker: 'redis://127.0.0.1:6379/9', queue });
 * const [run] = (await worker.waitForRecords((records) => records.length >= 2)).filter(...);
 * await worker.stop();
 */
export async function startCeleryWorker(options: CeleryWorkerOptions): Promise<CeleryWorker> {
  const worker = new CeleryWorker(options);
  started.add(worker);
  await worker.waitReady(options.readyTimeoutMs);
  return worker;
}

/**
 * Kills every worker started by {@link startCeleryWorker} in this file and removes their record
 * files. For `afterEach`/`afterAll`.
 *
 * @returns the host names of the workers disposed of (their Redis pidbox bindings may remain)
 */
export async function stopCeleryWorkers(): Promise<string[]> {
  const workers = [...started];
  await Promise.all(workers.map((worker) => worker.dispose()));
  return workers.map((worker) => worker.hostname);
}

/**
 * The `_kombu.binding.celery.pidbox` member a worker named `hostname` adds on Redis and leaves
 * behind when it is killed; remove it when cleaning up.
 */
export function celeryPidboxBinding(hostname: string): { key: string; member: string } {
  return {
    key: '_kombu.binding.celery.pidbox',
    member: `\x06\x16\x06\x16${hostname}.celery.pidbox`,
  };
}

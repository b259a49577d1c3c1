/**
 * The reliability worker (`test/fixtures-app/reliability-worker.ts`) as a child process the test
 * can SIGKILL, restart and stop. Each process is one Node process (no npm or shell in between),
 * so signalling its pid reaches the worker itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const WORKER_SCRIPT = path.resolve(import.meta.dirname, '../../fixtures-app/reliability-worker.ts');
/** Longest wait for a worker to print `ready`. */
const READY_WITHIN_MS = 20_000;
/** Longest wait for a signalled worker to exit before it is killed outright. */
const EXIT_WITHIN_MS = 20_000;

/** What the worker is told (see the fixture's header for the variables). */
export interface WorkerSettings {
  readonly brokerUrl: string;
  readonly queue: string;
  readonly recordUrl: string;
  readonly recordKey: string;
  /** Redis only. */
  readonly visibilityTimeoutS?: number;
  /** RabbitMQ only. */
  readonly prefetch?: number;
  /** @defaultValue 10 */
  readonly concurrency?: number;
}

/** A running (or finished) worker process. */
export class WorkerProcess {
  readonly #child: ChildProcess;
  readonly #exit: Promise<void>;
  #output = '';

  constructor(child: ChildProcess) {
    this.#child = child;
    this.#exit = new Promise((resolve) => child.once('exit', () => resolve()));
    const append = (chunk: Buffer) => {
      // Bounded: a worker warning in a loop must not fill the test's memory.
      this.#output = (this.#output + chunk.toString('utf8')).slice(-64_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** What it printed (the last 64 000 characters). */
  get output(): string {
    return this.#output;
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  get exitCode(): number | null {
    return this.#child.exitCode;
  }

  get signalCode(): NodeJS.Signals | null {
    return this.#child.signalCode;
  }

  /** Sends `signal` to this worker's pid and waits for it to exit (SIGKILL after 20 s). */
  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.exited) return;
    this.#child.kill(signal);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), EXIT_WITHIN_MS);
    await this.#exit;
    clearTimeout(timer);
  }
}

/**
 * Starts a worker and resolves once it prints `ready`. The process is added to `started` before
 * anything can fail, so the caller's `afterAll` can kill it whatever happens.
 *
 * @throws Error with the worker's output if it exits or stays silent for 20 s
 */
export async function startWorker(
  settings: WorkerSettings,
  started: WorkerProcess[],
): Promise<WorkerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SC_BROKER_URL: settings.brokerUrl,
    SC_QUEUE: settings.queue,
    SC_RECORD_URL: settings.recordUrl,
    SC_RECORD_KEY: settings.recordKey,
    SC_CONCURRENCY: String(settings.concurrency ?? 10),
    SC_RESTORE_EVERY_MS: '250',
    SC_WAIT_MS: '250',
    ...(settings.visibilityTimeoutS === undefined
      ? {}
      : { SC_VISIBILITY_TIMEOUT: String(settings.visibilityTimeoutS) }),
    ...(settings.prefetch === undefined ? {} : { SC_PREFETCH: String(settings.prefetch) }),
  };
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER_SCRIPT], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker = new WorkerProcess(child);
  started.push(worker);
  const deadline = Date.now() + READY_WITHIN_MS;
  while (!worker.output.includes(`ready ${worker.pid}`)) {
    if (worker.exited) throw new Error(`worker exited before it was ready:\n${worker.output}`);
    if (Date.now() > deadline) throw new Error(`worker not ready after 20 s:\n${worker.output}`);
    await sleep(20);
  }
  return worker;
}

/** Kills every worker still running (by its own pid), for `afterAll`. */
export async function killWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.stop('SIGKILL')));
}

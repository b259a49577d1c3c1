/**
 * Drives `test/python/celery_events.py`: a real `app.events.Receiver` feeding
 * `app.events.State()` for a few seconds (what Flower and `celery events` do), Celery's own
 * `EventDispatcher` for comparison, and Python's `repr()`. Every capture started here is
 * tracked: call {@link stopCaptures} in `afterEach`; children are killed by their own handle.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PYTHON, TEST_PYTHON_DIR } from './celery.js';

const SCRIPT = path.join(TEST_PYTHON_DIR, 'celery_events.py');

/** A task as `State.tasks[uuid]` holds it (fields of celery/events/state.py `Task`). */
export interface StateTask {
  readonly uuid: string;
  readonly name: string | null;
  readonly state: string;
  readonly args: string | null;
  readonly kwargs: string | null;
  readonly result: string | null;
  readonly exception: string | null;
  readonly traceback: string | null;
  readonly runtime: number | null;
  readonly retries: number | null;
  readonly eta: string | null;
  readonly expires: string | null;
  readonly root_id: string | null;
  readonly parent_id: string | null;
  /** Hostname of the `task-sent` sender. */
  readonly client: string | null;
  readonly routing_key: string | null;
  readonly sent: number | null;
  readonly received: number | null;
  readonly started: number | null;
  readonly succeeded: number | null;
  readonly failed: number | null;
  readonly retried: number | null;
  readonly rejected: number | null;
  readonly revoked: number | null;
  /** Hostname of the worker that sent its worker-side events. */
  readonly worker: string | null;
}

/** A worker as `State.workers[hostname]` holds it, with `alive` evaluated at the end. */
export interface StateWorker {
  readonly hostname: string;
  readonly pid: number | null;
  readonly freq: number;
  readonly active: number | null;
  readonly processed: number | null;
  readonly loadavg: number[] | null;
  readonly sw_ident: string | null;
  readonly sw_ver: string | null;
  readonly sw_sys: string | null;
  readonly alive: boolean;
  readonly heartbeats: number;
}

/** What the receiver saw. */
export interface StateDump {
  readonly tasks: Record<string, StateTask>;
  readonly workers: Record<string, StateWorker>;
  /** Every event, in the order received (type, hostname, clock as received, uuid). */
  readonly events: { type: string; hostname: string; clock: number; uuid: string | null }[];
  readonly event_count: number;
}

/** A running receiver. */
export interface EventCapture {
  /** Resolves once the receiver's queue (or subscription, on Redis) is being set up. */
  readonly ready: Promise<void>;
  /** Resolves with the State once the capture time is over. */
  readonly result: Promise<StateDump>;
}

const running = new Set<ChildProcess>();

/** Options of {@link captureCeleryEvents}. */
export interface CaptureOptions {
  readonly broker: string;
  readonly seconds: number;
  /** `broker_transport_options`, e.g. `{ global_keyprefix: 'x:' }`. */
  readonly transportOptions?: Record<string, unknown>;
  /** @defaultValue {@link PYTHON} */
  readonly python?: string;
}

/** Starts `celery_events.py capture`. */
export function captureCeleryEvents(options: CaptureOptions): EventCapture {
  const args = [SCRIPT, 'capture', '--broker', options.broker, '--seconds', `${options.seconds}`];
  if (options.transportOptions) {
    args.push('--transport-options', JSON.stringify(options.transportOptions));
  }
  const child = spawn(options.python ?? PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      if (stdout.includes('READY\n')) resolve();
    });
    void exited.then(() => reject(new Error(`receiver exited before READY:\n${stderr}`)));
  });
  const result = exited.then((code) => {
    const last = stdout.trim().split('\n').at(-1) ?? '';
    if (code !== 0 || !last.startsWith('{')) {
      throw new Error(`receiver exited with ${code}:\n${stderr.slice(-3000)}`);
    }
    return JSON.parse(last) as StateDump;
  });
  // Callers await `ready` first; keep a rejected `result` from being reported as unhandled.
  result.catch(() => undefined);
  return { ready, result };
}

/** Kills receivers still running (a failed test). */
export async function stopCaptures(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/**
 * Sends Celery's own `task-succeeded` and `worker-heartbeat` (`celery_events.py send`), with
 * `broker_transport_options` when given.
 */
export async function sendPythonEvents(
  broker: string,
  hostname: string,
  transportOptions?: Record<string, unknown>,
): Promise<void> {
  const options = transportOptions ? ['--transport-options', JSON.stringify(transportOptions)] : [];
  await promisify(execFile)(
    PYTHON,
    [SCRIPT, 'send', '--broker', broker, '--hostname', hostname, ...options],
    { timeout: 30_000 },
  );
}

/** Python's `repr()` of each JSON value. */
export async function pythonReprs(values: readonly unknown[]): Promise<string[]> {
  const { stdout } = await promisify(execFile)(PYTHON, [
    SCRIPT,
    'repr',
    '--values',
    JSON.stringify(values),
  ]);
  return JSON.parse(stdout) as string[];
}

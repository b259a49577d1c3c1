/**
 * A `redis-server` child with persistence on (append-only file, fsync on every write), in a
 * directory of its own, that a test can stop (SIGTERM or SIGKILL) and start again on the same
 * port and directory: a broker restart, without touching the shared server on 6379.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, REDIS_HOST } from '../../helpers/redis.js';

/** Longest wait for redis-server to load its append-only file and accept connections. */
const READY_WITHIN_MS = 20_000;

/** A restartable, persistent `redis-server`. */
export interface PersistentRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>/0`. */
  readonly url: string;
  readonly running: boolean;
  /** Stops the server with `signal` (the one this helper started, by its handle) and waits. */
  stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills the server if it runs and removes its directory. */
  remove(): Promise<void>;
}

/**
 * Starts a `redis-server` with `appendonly yes` and `appendfsync always`, so that every write it
 * acknowledged survives a SIGTERM or a SIGKILL.
 */
export async function startPersistentRedis(): Promise<PersistentRedis> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'sc-redis-aof-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    REDIS_HOST,
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    '--daemonize',
    'no',
  ];
  let child: ChildProcess | undefined;
  const isRunning = () => child !== undefined && child.exitCode === null && !child.signalCode;
  const start = async () => {
    if (isRunning()) throw new Error('redis-server is already running');
    child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    await untilReady(child);
  };
  const stop = async (signal: NodeJS.Signals) => {
    const running = child;
    if (!running || !isRunning()) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill(signal);
    await exited;
  };
  await start();
  return {
    port,
    url: `redis://${REDIS_HOST}:${port}/0`,
    get running() {
      return isRunning();
    },
    stop,
    start,
    async remove() {
      await stop('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Waits for "Ready to accept connections"; fails with the server's output if it exits. */
function untilReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server not ready within ${READY_WITHIN_MS} ms:\n${output}`));
    }, READY_WITHIN_MS);
    // The pipes stay read after start-up (a full pipe would block the server); only kept till then.
    const onData = (chunk: Buffer) => {
      if (ready) return;
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        ready = true;
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve();
      }
    };
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * A warm "Lambda container" for the broker-secret test: a child process (secret-container-main.ts)
 * that builds the runtime from its environment once, as a cold start does, then performs what it
 * is asked over IPC. Everything it writes to stdout and stderr is kept, for a test to check that
 * no password reaches a log.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** What the parent asks a container to do. */
export type ContainerRequest = { readonly id: number } & (
  | { readonly op: 'publish' }
  /** Receives up to 10 messages of the queue (waiting up to 500 ms) and settles them done. */
  | { readonly op: 'receive' }
  /** Claims `key` in the relay store, as a poller announces its tick. */
  | { readonly op: 'claim'; readonly key: string }
  /** Invokes the cron handler for the tick of `time`. */
  | { readonly op: 'cron'; readonly time: string }
  | { readonly op: 'close' }
);

/** What it answers: the operation's value, or the failure as a Lambda would log it. */
export type ContainerReply =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string; readonly detail: string };

/** A running container. */
export interface SecretContainer {
  /** Performs one operation; resolves with the reply, failures included. */
  call(request: DistributiveOmit<ContainerRequest, 'id'>): Promise<ContainerReply>;
  /** Its stdout and stderr so far. */
  output(): string;
  /** Closes its connections and waits for it to exit (killing it, the child it is, if it hangs). */
  stop(): Promise<void>;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const MAIN = path.join(import.meta.dirname, 'secret-container-main.ts');

/**
 * Starts a container with `env` on top of this process's environment.
 *
 * @param env - `BROKER_URL`, `BROKER_SECRET_ARN`, the AWS settings, `SC_TEST_QUEUE`, `SC_TEST_TASK`
 */
export function startSecretContainer(env: Record<string, string>): SecretContainer {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const pending = new Map<number, (reply: ContainerReply) => void>();
  child.on('message', (reply: ContainerReply) => {
    pending.get(reply.id)?.(reply);
    pending.delete(reply.id);
  });
  let next = 0;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    call(request) {
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, resolve);
        child.send({ ...request, id }, (error) => {
          if (error) reject(new Error(`container is gone: ${error.message}\n${output}`));
        });
      });
    },
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.connected) child.send({ op: 'close', id: next++ });
      else child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      // The close reply is not awaited: the child disconnects and exits right after it.
      child.once('disconnect', () => child.kill('SIGTERM'));
      await exited;
      clearTimeout(timer);
    },
  };
}

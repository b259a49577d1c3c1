/**
 * Helpers for tests against the real RabbitMQ: a throw-away vhost per test file, so every queue,
 * exchange and delay level a test declares disappears with it.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A vhost of the test's own, and its URL. */
export interface TestVhost {
  readonly name: string;
  readonly url: string;
  /** Deletes the vhost and everything in it. */
  remove(): Promise<void>;
}

/** Creates `sc-test-<uuid>` with full permissions for guest. */
export async function createTestVhost(): Promise<TestVhost> {
  const name = `sc-test-${randomUUID()}`;
  await run('rabbitmqctl', ['add_vhost', name, '-q']);
  await run('rabbitmqctl', ['set_permissions', '-q', '-p', name, 'guest', '.*', '.*', '.*']);
  return {
    name,
    url: `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(name)}`,
    remove: async () => {
      await run('rabbitmqctl', ['delete_vhost', '-q', name]);
    },
  };
}

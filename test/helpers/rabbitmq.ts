/**
 * Helpers for tests against the real RabbitMQ: a throw-away vhost per test file, so every queue,
 * exchange and delay level a test declares disappears with it, and `rabbitmqctl` views of what
 * the broker itself holds in it.
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

/**
 * Creates `sc-test-<uuid>` (or `sc-test-<label>-<uuid>`) with full permissions for guest.
 *
 * @param label - put in the name, e.g. to hold digits a classifier must not misread
 */
export async function createTestVhost(label?: string): Promise<TestVhost> {
  const name = `sc-test-${label ? `${label}-` : ''}${randomUUID()}`;
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

/** One queue as `rabbitmqctl list_queues --formatter json` shows it. */
export interface ListedQueue {
  readonly name: string;
  readonly durable: boolean;
  readonly auto_delete: boolean;
  readonly exclusive: boolean;
  /** `[name, AMQP type, value]` triples. */
  readonly arguments: [name: string, type: string, value: unknown][];
  readonly messages_ready: number;
  readonly messages_unacknowledged: number;
}

/** One exchange as `rabbitmqctl list_exchanges --formatter json` shows it. */
export interface ListedExchange {
  readonly name: string;
  readonly type: string;
  readonly durable: boolean;
  readonly auto_delete: boolean;
  readonly internal: boolean;
  readonly arguments: unknown[];
}

/** One binding as `rabbitmqctl list_bindings --formatter json` shows it. */
export interface ListedBinding {
  readonly source_name: string;
  readonly destination_name: string;
  readonly destination_kind: 'queue' | 'exchange';
  readonly routing_key: string;
  readonly arguments: unknown[];
}

async function list<T>(command: string, vhost: string, columns: string[]): Promise<T[]> {
  const { stdout } = await run(
    'rabbitmqctl',
    [command, '-q', '-p', vhost, ...columns, '--formatter', 'json'],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as T[];
}

/** The queues of `vhost`, read back from the broker. */
export function listQueues(vhost: string): Promise<ListedQueue[]> {
  return list('list_queues', vhost, [
    'name',
    'durable',
    'auto_delete',
    'exclusive',
    'arguments',
    'messages_ready',
    'messages_unacknowledged',
  ]);
}

/** The exchanges of `vhost`, read back from the broker. */
export function listExchanges(vhost: string): Promise<ListedExchange[]> {
  return list('list_exchanges', vhost, [
    'name',
    'type',
    'durable',
    'auto_delete',
    'internal',
    'arguments',
  ]);
}

/** The bindings of `vhost`, read back from the broker. */
export function listBindings(vhost: string): Promise<ListedBinding[]> {
  return list('list_bindings', vhost, [
    'source_name',
    'destination_name',
    'destination_kind',
    'routing_key',
    'arguments',
  ]);
}

/** Queue arguments as a plain object: RabbitMQ compares numbers of any integer width as equal. */
export function argumentsOf(queue: ListedQueue | undefined): Record<string, unknown> {
  return Object.fromEntries((queue?.arguments ?? []).map(([name, , value]) => [name, value]));
}

/** Makes the broker drop every client connection of `vhost` (and of no other vhost). */
export async function closeConnections(vhost: string): Promise<void> {
  await run('rabbitmqctl', ['close_all_connections', '-q', '-p', vhost, 'test: connection loss']);
}

/**
 * How the CLI shows things to people: aligned tables under the broker they were read from, one
 * line per settled message, durations, dead-letter entries in full, and progress on standard
 * error. Pure functions over plain data,
 * so every format is unit-tested; commands only write what these return.
 */
import type { DeadLetterEntry, QueueStats } from '../brokers/broker.js';
import type { Registry } from '../core/registry.js';
import type { DispatchOutcome, WorkerEvent } from '../worker/dispatch.js';
import type { BrokerIdentity } from './broker-choice.js';

/** Longest error text shown in a table cell; `dlq show` prints it whole. */
export const CELL_WIDTH = 60;

/**
 * Columns padded to their widest cell, two spaces apart, no trailing blanks.
 *
 * @param numeric - indexes of columns aligned to the right
 */
export function formatTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  numeric: readonly number[] = [],
): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? 0;
        return numeric.includes(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join('\n')}\n`;
}

/** `text` cut to `max` characters, ending in `…` when cut; on one line. */
export function truncate(text: string, max = CELL_WIDTH): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `12 ms`, `1.5 s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const total = Math.round(ms / 1000);
  return `${Math.floor(total / 60)}m${String(total % 60).padStart(2, '0')}s`;
}

/** `HH:MM:SS.mmm` in UTC, the time column of worker lines. */
export function clockTime(at: Date): string {
  return at.toISOString().slice(11, 23);
}

/**
 * One line per settled message, as `worker` and `dev` print it whichever broker and path settled
 * it (in-process worker, local poller, Amazon MQ dispatcher): time, task[id], retries out of the
 * task's maximum, and what happened ({@link describeOutcome}: the delay of a retry, the reason of
 * a dead letter, how long the run took).
 *
 * @example
 * 12:00:01.234  ingest.save_event[0b6f…]  retries 1/5  retry in 2.0 s after 3 ms (StoreUnavailableError: store busy)
 */
export function formatWorkerEvent(event: WorkerEvent, registry: Registry, now: Date): string {
  const { result } = event.delivery;
  const task = result.ok ? result.message.task : (result.task ?? '?');
  const id = result.ok ? result.message.id : (result.id ?? '?');
  const head = `${clockTime(now)}  ${task}[${id}]`;
  const retries = result.ok ? `  ${retriesOf(registry, task, result.message.retries)}` : '';
  return `${head}${retries}  ${describeOutcome(event.outcome, now)}\n`;
}

function retriesOf(registry: Registry, task: string, retries: number): string {
  const lookup = registry.lookup(task);
  if (lookup.kind === 'unregistered') return `retries ${retries}`;
  const max = lookup.task.options.maxRetries;
  return `retries ${retries}/${max === null ? '∞' : max}`;
}

/**
 * What happened to a message, in a few words: `succeeded in 12 ms`, `retry in 2.0 s after 3 ms
 * (StoreUnavailableError: store busy)`, `dead-lettered: excluded (TypeError: …) after 1 ms`,
 * `could not be run (attempt 2), re-queued (…)`. The one wording of every outcome line.
 *
 * @param now - when it was settled: a retry's delay counts from here
 */
export function describeOutcome(outcome: DispatchOutcome, now: Date): string {
  switch (outcome.kind) {
    case 'succeeded':
      return `succeeded in ${formatDuration(outcome.durationMs)}`;
    case 'ignored':
      return `ignored (${outcome.errorType}) in ${formatDuration(outcome.durationMs)}`;
    case 'duplicate':
      return `skipped as a duplicate (${outcome.why}) in ${formatDuration(outcome.durationMs)}`;
    case 'retry': {
      const delay = formatDuration(Math.max(0, Date.parse(outcome.dueAt) - now.getTime()));
      const error = truncate(`${outcome.errorType}: ${outcome.errorMessage}`);
      return `retry in ${delay} after ${formatDuration(outcome.durationMs)} (${error})`;
    }
    case 'not-due':
      return `not due: parked until ${outcome.dueAt}`;
    case 'dead': {
      const { reason } = outcome;
      const cause = reason.errorType
        ? `${reason.errorType}: ${reason.errorMessage ?? ''}`
        : reason.detail;
      return `dead-lettered: ${reason.reason} (${truncate(cause)}) after ${formatDuration(outcome.durationMs)}`;
    }
    case 'invalid':
      return `dead-lettered: invalid message (${truncate(outcome.detail)})`;
    case 'invoke-failed':
      return outcome.dead
        ? `dead-lettered: poison, could not be run ${outcome.failures} times (${truncate(outcome.detail)})`
        : `could not be run (attempt ${outcome.failures}), re-queued (${truncate(outcome.detail)})`;
    case 'released':
      return `put back unrun (${truncate(outcome.detail)})`;
  }
}

/**
 * The broker a command read, for people: `Redis 127.0.0.1:6379 db 0`, `RabbitMQ (TLS)
 * b-1.mq.eu-west-1.amazonaws.com:5671 vhost /`, followed by where the URL came from when it was
 * the default. Never a user name or password.
 */
export function describeBroker(broker: BrokerIdentity): string {
  const name = broker.kind === 'rabbitmq' ? 'RabbitMQ' : broker.cluster ? 'Redis Cluster' : 'Redis';
  const where = broker.kind === 'redis' ? `db ${broker.db}` : `vhost ${broker.vhost}`;
  const source = broker.source === 'default' ? ' (default: no --broker, no BROKER_URL)' : '';
  return `${name}${broker.tls ? ' (TLS)' : ''} ${broker.host}:${broker.port} ${where}${source}`;
}

/** The line above every table: `broker: Redis 127.0.0.1:6379 db 0`. */
export function brokerHeading(broker: BrokerIdentity): string {
  return `broker: ${describeBroker(broker)}\n`;
}

/** Queue counts as `inspect` prints them for people, under the broker they were read from. */
export function formatStatsTable(stats: readonly QueueStats[], broker: BrokerIdentity): string {
  const { kind } = broker;
  const rows = stats.map((entry) => [
    entry.queue,
    String(entry.ready),
    kind === 'rabbitmq' ? '-' : String(entry.unacked),
    String(entry.delayed),
    String(entry.deadLettered),
  ]);
  const table =
    brokerHeading(broker) +
    formatTable(['QUEUE', 'READY', 'UNACKED', 'DELAYED', 'DEAD'], rows, [1, 2, 3, 4]);
  if (kind === 'redis') return table;
  return (
    `${table}\nUNACKED: AMQP does not report other consumers' holds ` +
    '(rabbitmqctl list_queues name messages_unacknowledged does).\n' +
    'DELAYED: the delay levels are shared, so this is the total of every queue.\n'
  );
}

/**
 * Queue counts for scripts, with the broker they were read from: `unacked` is `null` where the
 * broker cannot count it.
 */
export function statsJson(stats: readonly QueueStats[], broker: BrokerIdentity): string {
  const queues = stats.map((entry) => ({
    ...entry,
    unacked: broker.kind === 'rabbitmq' ? null : entry.unacked,
  }));
  return `${JSON.stringify({ broker, queues }, null, 2)}\n`;
}

/** Dead letters for scripts (`dlq list`, `dlq show`), with the broker they were read from. */
export function deadLettersJson(
  entries: readonly DeadLetterEntry[],
  broker: BrokerIdentity,
): string {
  return `${JSON.stringify({ broker, entries }, null, 2)}\n`;
}

/** The error of a dead letter in one phrase: `Type: message`, else the detail. */
export function deadLetterError(entry: DeadLetterEntry): string {
  return entry.errorType ? `${entry.errorType}: ${entry.errorMessage ?? ''}`.trim() : entry.detail;
}

/** Dead letters as `dlq list` prints them, under the broker they were read from. */
export function formatDeadLetterTable(
  entries: readonly DeadLetterEntry[],
  broker: BrokerIdentity,
): string {
  const rows = entries.map((entry) => [
    entry.at,
    entry.queue,
    entry.reason,
    entry.task ?? '?',
    entry.id ?? '?',
    entry.retries === null ? '?' : String(entry.retries),
    truncate(deadLetterError(entry)),
  ]);
  const headers = ['TIME', 'QUEUE', 'REASON', 'TASK', 'ID', 'RETRIES', 'ERROR'];
  return brokerHeading(broker) + formatTable(headers, rows, [5]);
}

/**
 * One dead letter in full, as `dlq show` prints it: every field (the broker it was read from
 * first), then the raw message.
 */
export function formatDeadLetter(entry: DeadLetterEntry, broker: BrokerIdentity): string {
  const fields: [string, string][] = [
    ['broker', describeBroker(broker)],
    ['id', entry.id ?? '(unknown)'],
    ['task', entry.task ?? '(unknown)'],
    ['queue', entry.queue],
    ['reason', entry.reason],
    ['detail', entry.detail],
    ['error', entry.errorType ? `${entry.errorType}: ${entry.errorMessage ?? ''}` : '-'],
    ['retries', entry.retries === null ? '(unknown)' : String(entry.retries)],
    ['dead-lettered at', entry.at],
  ];
  const width = Math.max(...fields.map(([name]) => name.length)) + 1;
  const lines = fields.map(([name, value]) => `${`${name}:`.padEnd(width)} ${value}`);
  const body = kombuBody(entry.raw);
  if (body !== null) lines.push('', 'body (decoded from the envelope):', body);
  lines.push('', 'raw message:', prettyJson(entry.raw));
  return `${lines.join('\n')}\n`;
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    // Not JSON (the reason it was dead-lettered, often): shown exactly as stored.
    return text;
  }
}

/** The base64 body of a kombu envelope (Redis), decoded; `null` for anything else. */
function kombuBody(raw: string): string | null {
  try {
    const envelope = JSON.parse(raw) as {
      body?: unknown;
      properties?: { body_encoding?: unknown };
    };
    if (typeof envelope?.body !== 'string' || envelope.properties?.body_encoding !== 'base64') {
      return null;
    }
    return prettyJson(Buffer.from(envelope.body, 'base64').toString('utf8'));
  } catch {
    // Not an envelope: the raw text is shown as it is.
    return null;
  }
}

/** Reports `done` of `total` on standard error: one redrawn line on a terminal, else a line each. */
export interface Progress {
  update(done: number): void;
  /** Ends the redrawn line. */
  finish(): void;
}

/**
 * A progress line `label: done/total`, shown only for work worth watching (`total` above
 * `threshold`).
 */
export function progress(
  write: (text: string) => void,
  label: string,
  total: number,
  options: { readonly tty: boolean; readonly threshold?: number },
): Progress {
  const shown = total > (options.threshold ?? 0);
  let drawn = false;
  return {
    update(done) {
      if (!shown) return;
      drawn = true;
      write(options.tty ? `\r${label}: ${done}/${total}` : `${label}: ${done}/${total}\n`);
    },
    finish() {
      if (shown && drawn && options.tty) write('\n');
    },
  };
}

/**
 * Proof against real Python Celery: messages we encode are published to real Redis and RabbitMQ,
 * then `shared/celery-interop/inspect_queue.py --validate --take` reads them off the broker with
 * the clients Celery 5.2 runs on (redis-py 4.3, py-amqp 5.1) and checks them against the wire
 * rules. A two-item body shows the validator can fail.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { encodeAmqpMessage } from '../../src/core/amqp-codec.js';
import { createRetryMessage, createTaskMessage, type TaskMessage } from '../../src/core/message.js';
import {
  encodeRedisMessage,
  redisBindingMember,
  redisQueueKeys,
} from '../../src/core/redis-codec.js';
import { toCeleryHeaders } from '../../src/core/wire.js';
import { replaceEnvelopeBody } from '../helpers/wire.js';

const PY = process.env.PY ?? '/usr/bin/python3';
const INSPECT_QUEUE = path.resolve(
  import.meta.dirname,
  '../../../shared/celery-interop/inspect_queue.py',
);
const REDIS_URL = 'redis://127.0.0.1:6379/11';
const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672/';
const TASK = 'sentry.tasks.do_work';
const TWO_ITEM_BODY = '[["two-items"], {}]';

/** What `inspect_queue.py` prints for one message (the keys these tests read). */
interface ReportedMessage {
  readonly headers: Record<string, unknown>;
  readonly properties: Record<string, unknown>;
  readonly body_decoded: unknown;
  readonly problems: string[];
  /** Redis: the list the message was in. */
  readonly redis_key?: string;
  /** AMQP: the field type tag of every header. */
  readonly header_types?: Record<string, { readonly type: string; readonly value: unknown }>;
  readonly property_flags_present?: string[];
}

interface ValidatorReport {
  readonly messages: ReportedMessage[];
  readonly bindings?: Record<string, { routing_key: string; pattern: string; queue: string }[]>;
}

/** Runs the validator on one queue, taking its messages off; exit status 1 means a problem. */
async function validateQueue(broker: string, queue: string) {
  const args = [INSPECT_QUEUE, '--broker', broker, '--queue', queue, '--validate', '--take'];
  try {
    const { stdout } = await promisify(execFile)(PY, args, { maxBuffer: 16 * 1024 * 1024 });
    return { exitCode: 0, report: JSON.parse(stdout) as ValidatorReport };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string };
    // Only a validation failure prints a report; anything else (no celery, broker down) rethrows.
    if (failed.code !== 1 || !failed.stdout) throw error;
    return { exitCode: 1, report: JSON.parse(failed.stdout) as ValidatorReport };
  }
}

/** The five kinds of message the adapter will publish. */
function interopMessages(queue: string): TaskMessage[] {
  const call = { task: TASK, queue };
  const retried = createTaskMessage({ ...call, args: ['retry-me'], kwargs: { attempt: 1 } });
  return [
    createTaskMessage({ ...call, args: [1, 'two', { three: 3 }], kwargs: { user_id: 42 } }),
    createTaskMessage({ ...call, args: ['later'], countdown: 60, expires: 3600 }),
    createTaskMessage({ ...call, args: ['urgent'], priority: 7 }),
    createTaskMessage({ ...call, args: ['limited'], timeLimit: [300, 200] }),
    createRetryMessage(retried, new Date(Date.now() + 1000)),
  ];
}

/** Each published message next to the validator's report of it, matched by id. */
function pairById(messages: TaskMessage[], report: ValidatorReport) {
  expect(report.messages.map((reported) => reported.headers.id).sort()).toEqual(
    messages.map((message) => message.id).sort(),
  );
  return messages.map((message) => {
    const reported = report.messages.find((candidate) => candidate.headers.id === message.id);
    if (!reported) expect.fail(`validator did not report ${message.id}`);
    return { message, reported };
  });
}

describe('Celery validator on Redis', () => {
  let redis: Redis;
  let queue: string;

  beforeAll(() => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    queue = `sc-validate-${randomUUID()}`;
  });
  afterEach(async () => {
    await redis.del(...redisQueueKeys(queue), `_kombu.binding.${queue}`);
  });

  /** Declares the queue and pushes the envelope as kombu does (spec §8.2). */
  async function publish(envelope: string, key: string) {
    await redis.sadd(`_kombu.binding.${queue}`, redisBindingMember(queue));
    await redis.lpush(key, envelope);
  }

  it('finds every message we encode valid, as Celery would read it', async () => {
    // Prepare
    const messages = interopMessages(queue);
    for (const message of messages) {
      const { envelope, key } = encodeRedisMessage(message);
      await publish(envelope, key);
    }

    // Act
    const { exitCode, report } = await validateQueue(REDIS_URL, queue);

    // Assess
    expect(exitCode).toBe(0);
    expect(report.messages).toHaveLength(messages.length);
    for (const { message, reported } of pairById(messages, report)) {
      expect(reported.problems).toEqual([]);
      expect(reported.headers).toEqual(toCeleryHeaders(message));
      expect(reported.body_decoded).toEqual([message.args, message.kwargs, message.embed]);
    }
    expect(report.bindings?.[`_kombu.binding.${queue}`]).toEqual([
      { routing_key: queue, pattern: '', queue },
    ]);
    const urgent = report.messages.find((reported) => reported.properties.priority === 7);
    expect(urgent?.redis_key).toBe(`${queue}\x06\x166`);
  });

  it('reports a problem for a hand-made envelope with a two-item body', async () => {
    // Prepare
    const message = createTaskMessage({ task: TASK, queue, args: ['two-items'] });
    const { envelope, key } = encodeRedisMessage(message);
    const body = Buffer.from(TWO_ITEM_BODY).toString('base64');
    await publish(replaceEnvelopeBody(envelope, body), key);

    // Act
    const { exitCode, report } = await validateQueue(REDIS_URL, queue);

    // Assess
    expect(exitCode).toBe(1);
    expect(report.messages).toHaveLength(1);
    expect(report.messages[0]?.problems).toEqual([
      'body must be a JSON array [args, kwargs, embed]',
    ]);
  });
});

describe('Celery validator on RabbitMQ', () => {
  let connection: ChannelModel;
  let channel: ConfirmChannel;
  let queue: string;

  beforeAll(async () => {
    connection = await amqp.connect(AMQP_URL);
    channel = await connection.createConfirmChannel();
  });
  afterAll(async () => {
    await connection.close();
  });
  beforeEach(async () => {
    queue = `sc-validate-${randomUUID()}`;
    // Declared as Celery declares it: durable, not auto-delete, no arguments (spec §3.1).
    await channel.assertQueue(queue, { durable: true, autoDelete: false });
  });
  afterEach(async () => {
    await channel.deleteQueue(queue);
  });

  async function publish(
    content: Buffer,
    options: ReturnType<typeof encodeAmqpMessage>['options'],
  ) {
    channel.publish('', queue, content, options);
    await channel.waitForConfirms();
  }

  it('finds every message we encode valid, with 32-bit int header types', async () => {
    // Prepare
    const messages = interopMessages(queue);
    for (const message of messages) {
      const { content, options } = encodeAmqpMessage(message);
      await publish(content, options);
    }

    // Act
    const { exitCode, report } = await validateQueue(AMQP_URL, queue);

    // Assess
    expect(exitCode).toBe(0);
    expect(report.messages).toHaveLength(messages.length);
    for (const { message, reported } of pairById(messages, report)) {
      expect(reported.problems).toEqual([]);
      expect(reported.headers).toEqual(toCeleryHeaders(message));
      expect(reported.body_decoded).toEqual([message.args, message.kwargs, message.embed]);
      const types = reported.header_types ?? {};
      expect(types.retries).toEqual({ type: 'I', value: message.retries });
      const limits = types.timelimit?.value as { type: string }[];
      const expectedTags = message.timeLimit.map((limit) => (limit === null ? 'V' : 'I'));
      expect(limits.map((limit) => limit.type)).toEqual(expectedTags);
    }
  });

  it('sends timelimit [300, 200] as two I values and expires as an expiration in ms', async () => {
    // Prepare
    const limited = createTaskMessage({ task: TASK, queue, timeLimit: [300, 200] });
    const expiring = createTaskMessage({ task: TASK, queue, expires: 3600, priority: 7 });
    for (const message of [limited, expiring]) {
      const { content, options } = encodeAmqpMessage(message);
      await publish(content, options);
    }

    // Act
    const { exitCode, report } = await validateQueue(AMQP_URL, queue);

    // Assess
    expect(exitCode).toBe(0);
    const [limitedReport, expiringReport] = [limited, expiring].map((message) =>
      report.messages.find((reported) => reported.headers.id === message.id),
    );
    expect(limitedReport?.header_types?.timelimit).toEqual({
      type: 'A',
      value: [
        { type: 'I', value: 300 },
        { type: 'I', value: 200 },
      ],
    });
    expect(limitedReport?.property_flags_present).not.toContain('expiration');
    expect(expiringReport?.properties.priority).toBe(7);
    const expiration = Number(expiringReport?.properties.expiration);
    expect(expiration).toBeGreaterThan(3_590_000);
    expect(expiration).toBeLessThanOrEqual(3_600_000);
  });

  it('reports a problem for a hand-made message with a two-item body', async () => {
    // Prepare
    const message = createTaskMessage({ task: TASK, queue, args: ['two-items'] });
    const { options } = encodeAmqpMessage(message);
    await publish(Buffer.from(TWO_ITEM_BODY), options);

    // Act
    const { exitCode, report } = await validateQueue(AMQP_URL, queue);

    // Assess
    expect(exitCode).toBe(1);
    expect(report.messages).toHaveLength(1);
    expect(report.messages[0]?.problems).toEqual([
      'body must be a JSON array [args, kwargs, embed]',
    ]);
  });
});

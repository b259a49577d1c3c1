import { describe, expect, it, vi } from 'vitest';
import {
  type EventRedisClient,
  RedisEventDispatcher,
  type RedisEventDispatcherOptions,
} from '../../../../src/brokers/redis/redis-events.js';
import { parseBrokerConfig } from '../../../../src/config/broker-config.js';
import { taskStarted, workerEvent } from '../../../../src/core/celery-events.js';

/** How the recording client behaves. */
interface Recording {
  /** Calls itself a cluster client. */
  readonly isCluster?: boolean;
  /** Answers no publish until `replies.release()`. */
  readonly holdReplies?: boolean;
}

/** A client that records what is published, one call or one pipeline at a time. */
function recordingClient(failWith?: Error, recording: Recording = {}) {
  const calls: { channel: string; message: string; pipelined: boolean }[][] = [];
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  const client: EventRedisClient = {
    isCluster: recording.isCluster ?? false,
    async publish(channel, message) {
      if (failWith) throw failWith;
      calls.push([{ channel, message: String(message), pipelined: false }]);
      if (recording.holdReplies) await held;
      return 1;
    },
    pipeline() {
      const batch: { channel: string; message: string; pipelined: boolean }[] = [];
      return {
        publish(channel: string, message: string | Buffer) {
          batch.push({ channel, message: String(message), pipelined: true });
        },
        async exec() {
          calls.push(batch);
          return batch.map((): [Error | null, unknown] => [failWith ?? null, 1]);
        },
      };
    },
    quit: async () => 'OK',
    disconnect: () => undefined,
  };
  return { client, calls, replies: { release } };
}

/** 300 drafts of ~500 characters: three `task.multi` lists of ~50k characters each. */
function threeLargeLists() {
  return Array.from({ length: 300 }, (_, index) => ({
    type: 'task-started' as const,
    fields: { uuid: `t${index}`, note: 'x'.repeat(400) },
  }));
}

function dispatcherWith(
  config: Record<string, unknown>,
  options: Partial<RedisEventDispatcherOptions> = {},
  failWith?: Error,
  recording?: Recording,
) {
  const parsed = parseBrokerConfig({ kind: 'redis', ...config });
  if (parsed.kind !== 'redis') throw new Error('not a Redis config');
  const recorded = recordingClient(failWith, recording);
  const dispatcher = new RedisEventDispatcher({
    config: parsed,
    client: recorded.client,
    hostname: 'fn@env',
    pid: 7,
    now: () => 2000,
    ...options,
  });
  return { dispatcher, calls: recorded.calls, replies: recorded.replies };
}

describe('RedisEventDispatcher channels (kombu _get_publish_topic)', () => {
  it.each([
    ['database 0 by default', { url: 'redis://h:6379' }, {}, '/0.celeryev/task.started'],
    ['the URL database', { url: 'redis://h:6379/5' }, {}, '/5.celeryev/task.started'],
    [
      'global_keyprefix first',
      { url: 'redis://h/2', keyPrefix: 'app:' },
      {},
      'app:/2.celeryev/task.started',
    ],
    ['fanout_prefix off', { url: 'redis://h/2' }, { fanoutPrefix: false }, 'celeryev/task.started'],
    [
      'a custom fanout_prefix',
      { url: 'redis://h/2' },
      { fanoutPrefix: '/x{db}.' },
      '/x2.celeryev/task.started',
    ],
    ['fanout_patterns off', { url: 'redis://h/2' }, { fanoutPatterns: false }, '/2.celeryev'],
  ])('publishes with %s on %s', async (_case, config, options, channel) => {
    const { dispatcher, calls } = dispatcherWith(config, options);

    await dispatcher.send([taskStarted('t1')]);

    expect(calls).toEqual([[expect.objectContaining({ channel, pipelined: false })]]);
  });
});

describe('RedisEventDispatcher envelopes', () => {
  it("frames an event as kombu's envelope with the JSON body unencoded", async () => {
    const { dispatcher, calls } = dispatcherWith({ url: 'redis://h/0' });

    await dispatcher.send([taskStarted('t1')]);

    const envelope = JSON.parse(calls[0]?.[0]?.message ?? '');
    expect(envelope).toEqual({
      body: expect.any(String),
      'content-encoding': 'utf-8',
      'content-type': 'application/json',
      headers: { hostname: 'fn@env' },
      properties: {
        delivery_mode: 1,
        delivery_info: { exchange: 'celeryev', routing_key: 'task.started' },
        priority: 0,
        body_encoding: null,
        delivery_tag: expect.stringMatching(/^[0-9a-f-]{36}$/),
      },
    });
    expect(JSON.parse(envelope.body)).toMatchObject({
      hostname: 'fn@env',
      pid: 7,
      uuid: 't1',
      timestamp: 2,
      type: 'task-started',
    });
  });

  it('pipelines small messages into one write', async () => {
    const { dispatcher, calls } = dispatcherWith({ url: 'redis://h/0' });

    await dispatcher.send([
      taskStarted('t1'),
      workerEvent('heartbeat', { active: 0, processed: 0 }),
    ]);

    expect(calls).toHaveLength(1);
    expect(calls[0]?.map((call) => [call.channel, call.pipelined])).toEqual([
      ['/0.celeryev/task.started', true],
      ['/0.celeryev/worker.heartbeat', true],
    ]);
  });

  it('writes large messages one command each, in order, without waiting for replies', async () => {
    const { dispatcher, calls, replies } = dispatcherWith({ url: 'redis://h/0' }, {}, undefined, {
      holdReplies: true,
    });
    const drafts = threeLargeLists();

    const sent = dispatcher.send(drafts, { multi: true });
    await vi.waitFor(() => expect(calls).toHaveLength(3));
    replies.release();
    await sent;

    expect(calls.map((batch) => batch.map((call) => call.pipelined))).toEqual([
      [false],
      [false],
      [false],
    ]);
    const uuids = calls.flatMap((batch) =>
      (JSON.parse(JSON.parse(batch[0]?.message ?? '').body) as { uuid: string }[]).map(
        (event) => event.uuid,
      ),
    );
    expect(uuids).toEqual(drafts.map((draft) => draft.fields.uuid));
  });

  it('pipelines all on a cluster, which would send each command to a node of its choosing', async () => {
    const { dispatcher, calls } = dispatcherWith({ url: 'redis://h/0' }, {}, undefined, {
      isCluster: true,
    });

    await dispatcher.send(threeLargeLists(), { multi: true });

    expect(calls.map((batch) => batch.map((call) => call.pipelined))).toEqual([[true, true, true]]);
  });

  it('publishes nothing for no drafts', async () => {
    const { dispatcher, calls } = dispatcherWith({ url: 'redis://h/0' });

    await dispatcher.send([]);

    expect(calls).toEqual([]);
  });

  it('reports a failed publish as a BrokerError naming the endpoint, not the password', async () => {
    const { dispatcher } = dispatcherWith(
      { url: 'redis://:secret@h:6379/0' },
      {},
      new Error('READONLY'),
    );

    const failure = dispatcher.send([taskStarted('t1'), taskStarted('t2')]);

    await expect(failure).rejects.toMatchObject({
      name: 'BrokerError',
      message: expect.stringMatching(/^Redis at h:6379\/0: publish 2 event\(s\) failed: READONLY/),
    });
    await expect(failure).rejects.not.toThrow(/secret/);
  });

  it('refuses to send once closed', async () => {
    const { dispatcher } = dispatcherWith({ url: 'redis://h/0' });
    await dispatcher.close();

    await expect(dispatcher.send([taskStarted('t1')])).rejects.toThrow(/closed/);
  });
});

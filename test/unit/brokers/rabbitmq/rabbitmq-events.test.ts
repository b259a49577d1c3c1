import { EventEmitter } from 'node:events';
import type { ChannelModel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import type { AmqpConnect } from '../../../../src/brokers/rabbitmq/amqp-connect.js';
import { RabbitMqEventDispatcher } from '../../../../src/brokers/rabbitmq/rabbitmq-events.js';
import { parseBrokerConfig } from '../../../../src/config/broker-config.js';
import { taskStarted, workerEvent } from '../../../../src/core/celery-events.js';

/** What the fake channel was asked to do, in order. */
type Call =
  | { op: 'assertExchange'; name: string; type: string; options: unknown }
  | { op: 'publish'; exchange: string; routingKey: string; body: string; options: unknown }
  | { op: 'waitForConfirms' };

/** A connection whose channels record calls; `confirmFails` makes the broker nack. */
function fakeBroker(confirmFails = false) {
  const calls: Call[] = [];
  const opened: string[] = [];
  const channel = Object.assign(new EventEmitter(), {
    async assertExchange(name: string, type: string, options: unknown) {
      calls.push({ op: 'assertExchange', name, type, options });
      return { exchange: name };
    },
    publish(exchange: string, routingKey: string, content: Buffer, options: unknown) {
      calls.push({ op: 'publish', exchange, routingKey, body: content.toString(), options });
      return true;
    },
    async waitForConfirms() {
      calls.push({ op: 'waitForConfirms' });
      if (confirmFails) throw new Error('message nacked');
    },
  });
  const plainChannel = Object.assign(new EventEmitter(), {
    assertExchange: channel.assertExchange,
    publish: channel.publish,
  });
  const connection = Object.assign(new EventEmitter(), {
    async createConfirmChannel() {
      opened.push('confirm');
      return channel;
    },
    async createChannel() {
      opened.push('plain');
      return plainChannel;
    },
    async close() {
      opened.push('closed');
    },
  });
  const urls: string[] = [];
  const connect: AmqpConnect = async (url) => {
    urls.push(url);
    return connection as unknown as ChannelModel;
  };
  return { calls, opened, urls, connect };
}

function dispatcherOn(broker: ReturnType<typeof fakeBroker>, confirm?: boolean) {
  const config = parseBrokerConfig({ kind: 'rabbitmq', url: 'amqp://u:p@mq:5672/v' });
  if (config.kind !== 'rabbitmq') throw new Error('not a RabbitMQ config');
  return new RabbitMqEventDispatcher({
    config,
    connect: broker.connect,
    hostname: 'fn@env',
    pid: 7,
    now: () => 2000,
    ...(confirm === undefined ? {} : { confirm }),
  });
}

describe('RabbitMqEventDispatcher', () => {
  it('declares celeryev as Celery does, then publishes with py-amqp properties and waits for confirms', async () => {
    const broker = fakeBroker();
    const dispatcher = dispatcherOn(broker);

    await dispatcher.send([taskStarted('t1'), workerEvent('online', { active: 0, processed: 0 })]);

    expect(broker.calls.map((call) => call.op)).toEqual([
      'assertExchange',
      'publish',
      'publish',
      'waitForConfirms',
    ]);
    expect(broker.calls[0]).toEqual({
      op: 'assertExchange',
      name: 'celeryev',
      type: 'topic',
      options: { durable: true, autoDelete: false },
    });
    expect(broker.calls[1]).toMatchObject({
      exchange: 'celeryev',
      routingKey: 'task.started',
      options: {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        headers: { hostname: 'fn@env' },
        deliveryMode: 1,
        priority: 0,
      },
    });
    expect(broker.calls[2]).toMatchObject({ routingKey: 'worker.online' });
    expect(broker.urls).toEqual(['amqp://u:p@mq:5672/v?heartbeat=30']);
  });

  it('opens one connection and declares once across sends', async () => {
    const broker = fakeBroker();
    const dispatcher = dispatcherOn(broker);

    await dispatcher.send([taskStarted('t1')]);
    await dispatcher.send([taskStarted('t2')]);

    expect(broker.urls).toHaveLength(1);
    expect(broker.calls.filter((call) => call.op === 'assertExchange')).toHaveLength(1);
  });

  it('with confirm off, uses a plain channel and does not wait', async () => {
    const broker = fakeBroker();
    const dispatcher = dispatcherOn(broker, false);

    await dispatcher.send([taskStarted('t1')]);

    expect(broker.opened).toEqual(['plain']);
    expect(broker.calls.map((call) => call.op)).toEqual(['assertExchange', 'publish']);
  });

  it('reports a nacked publish as a BrokerError', async () => {
    const dispatcher = dispatcherOn(fakeBroker(true));

    await expect(dispatcher.send([taskStarted('t1')])).rejects.toMatchObject({
      name: 'BrokerError',
      message: expect.stringContaining('publish 1 event(s) failed'),
    });
  });

  it('closes its connection and refuses to send afterwards', async () => {
    const broker = fakeBroker();
    const dispatcher = dispatcherOn(broker);
    await dispatcher.send([taskStarted('t1')]);

    await dispatcher.close();

    expect(broker.opened).toEqual(['confirm', 'closed']);
    await expect(dispatcher.send([taskStarted('t2')])).rejects.toThrow(/closed/);
  });
});

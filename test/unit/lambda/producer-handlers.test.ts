import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BrokerError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  createHttpProducerHandler,
  createInvokeProducerHandler,
  MAX_HTTP_BODY_BYTES,
} from '../../../src/lambda/producer-handlers.js';
import { fakeBroker, fakeContext, fakeRuntime } from '../../helpers/lambda.js';

const save = defineTask(
  {
    name: 'app.save',
    queue: 'events',
    kwargs: z.object({ event_id: z.string().min(1), count: z.number().int().optional() }),
    maxArgumentBytes: 512,
  },
  () => null,
);
const ping = defineTask({ name: 'app.ping', queue: 'events' }, () => 'pong');
const registry = createRegistry({ tasks: [save, ping], queues: [{ name: 'events' }] });

/** An HTTP API (payload 2.0) event for `POST /tasks/{name}`. */
function post(
  name: string | undefined,
  body?: string,
  extra: Partial<APIGatewayProxyEventV2> = {},
): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'POST /tasks/{name}',
    rawPath: `/tasks/${name ?? ''}`,
    rawQueryString: '',
    headers: { 'content-type': 'application/json' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: {
        method: 'POST',
        path: `/tasks/${name ?? ''}`,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'test',
      },
      requestId: 'request',
      routeKey: 'POST /tasks/{name}',
      stage: '$default',
      time: '01/Jan/2026:00:00:00 +0000',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
    ...(name === undefined ? {} : { pathParameters: { name } }),
    ...(body === undefined ? {} : { body }),
    ...extra,
  };
}

/** Calls the HTTP handler on a fresh fake broker; returns status, parsed body and the broker. */
async function callHttp(event: APIGatewayProxyEventV2, broker = fakeBroker()) {
  const handler = createHttpProducerHandler(fakeRuntime(registry, broker));
  const response = await handler(event, fakeContext());
  return {
    status: response.statusCode,
    headers: response.headers,
    body: JSON.parse(response.body ?? 'null') as Record<string, unknown>,
    broker,
  };
}

async function callInvoke(event: unknown, broker = fakeBroker()) {
  const handler = createInvokeProducerHandler(fakeRuntime(registry, broker));
  return { result: await handler(event as never, fakeContext()), broker };
}

describe('the HTTP producer (POST /tasks/{name})', () => {
  it('publishes the call and answers 202 with the task id', async () => {
    // Act
    const { status, headers, body, broker } = await callHttp(
      post('app.save', JSON.stringify({ kwargs: { event_id: 'evt-1' } })),
    );

    // Assess
    expect(status).toBe(202);
    expect(headers).toEqual({ 'content-type': 'application/json' });
    expect(broker.published).toHaveLength(1);
    expect(body).toEqual({ id: broker.published[0]?.id, task: 'app.save' });
    expect(broker.published[0]).toMatchObject({
      task: 'app.save',
      routingKey: 'events',
      kwargs: { event_id: 'evt-1' },
    });
  });

  it('takes the call options: id, eta, expires and priority', async () => {
    // Prepare
    const call = {
      kwargs: { event_id: 'evt-1' },
      id: 'my-own-id',
      eta: '2030-01-01T00:00:00+00:00',
      expires: '2030-01-02T00:00:00Z',
      priority: 3,
    };

    // Act
    const { status, broker } = await callHttp(post('app.save', JSON.stringify(call)));

    // Assess
    expect(status).toBe(202);
    expect(broker.published[0]).toMatchObject({
      id: 'my-own-id',
      eta: new Date('2030-01-01T00:00:00Z'),
      expires: new Date('2030-01-02T00:00:00Z'),
      priority: 3,
    });
  });

  it.each<[string, APIGatewayProxyEventV2]>([
    ['an empty body', post('app.ping')],
    ['a blank body', post('app.ping', '  \n')],
    [
      'a base64 body',
      post('app.ping', Buffer.from('{"args": [1]}').toString('base64'), { isBase64Encoded: true }),
    ],
    ['a percent-encoded task name', post('app%2Eping', '{}')],
  ])('accepts %s', async (_, event) => {
    // Act
    const { status, broker } = await callHttp(event);

    // Assess
    expect(status).toBe(202);
    expect(broker.published.map((message) => message.task)).toEqual(['app.ping']);
  });

  it.each<[string, string, { path: string; message: string | RegExp }[]]>([
    [
      'an unknown key in the call',
      JSON.stringify({ kwarg: { event_id: 'e' }, kwargs: { event_id: 'e' } }),
      [{ path: 'kwarg', message: 'unknown option (check the spelling)' }],
    ],
    [
      'kwargs failing the task schema',
      JSON.stringify({ kwargs: { event_id: '', count: 1.5 } }),
      [
        { path: 'kwargs.event_id', message: /\S/ },
        { path: 'kwargs.count', message: /\S/ },
      ],
    ],
    [
      'a bad call and bad kwargs at once',
      JSON.stringify({ kwargs: { count: 'two' }, countdown: -1, retries: 2 }),
      [
        { path: 'countdown', message: /\S/ },
        { path: 'retries', message: 'unknown option (check the spelling)' },
        { path: 'kwargs.event_id', message: /\S/ },
        { path: 'kwargs.count', message: /\S/ },
      ],
    ],
    ['a body that is not JSON', '{"kwargs": {', [{ path: '(body)', message: 'not JSON' }]],
    ['a body that is not an object', '[1, 2]', [{ path: '', message: /object/ }]],
  ])(
    'answers 400 listing every field error for %s, publishing nothing',
    async (_, body, issues) => {
      // Act
      const { status, body: answer, broker } = await callHttp(post('app.save', body));

      // Assess
      expect(status).toBe(400);
      expect(answer.issues).toEqual(
        issues.map(({ path, message }) => ({
          path,
          message: typeof message === 'string' ? message : expect.stringMatching(message),
        })),
      );
      expect(broker.published).toEqual([]);
    },
  );

  it.each<[string, APIGatewayProxyEventV2, string]>([
    ['an unknown task', post('app.nope', '{}'), 'unregistered task: app.nope'],
    ['no task name', post(undefined, '{}'), 'no task name in the path: POST /tasks/{name}'],
    ['a malformed escape in the name', post('app%E0%A4', '{}'), 'unregistered task: app%E0%A4'],
  ])('answers 404 for %s', async (_, event, error) => {
    // Act
    const { status, body, broker } = await callHttp(event);

    // Assess
    expect(status).toBe(404);
    expect(body).toEqual({ error });
    expect(broker.published).toEqual([]);
  });

  it('answers 413 for a body over 256 KiB', async () => {
    // Prepare
    const body = JSON.stringify({
      kwargs: { event_id: 'e', pad: 'x'.repeat(MAX_HTTP_BODY_BYTES) },
    });

    // Act
    const { status, body: answer, broker } = await callHttp(post('app.save', body));

    // Assess
    expect(status).toBe(413);
    expect(answer).toEqual({ error: 'body over 262144 bytes' });
    expect(broker.published).toEqual([]);
  });

  it("answers 413 for arguments over the task's maxArgumentBytes", async () => {
    // Prepare
    const body = JSON.stringify({ kwargs: { event_id: 'e', pad: 'x'.repeat(600) } });

    // Act
    const { status, body: answer, broker } = await callHttp(post('app.save', body));

    // Assess
    expect(status).toBe(413);
    expect(answer.error).toMatch(/over the limit of 512 bytes: pass ids, not data$/);
    expect(broker.published).toEqual([]);
  });

  it('answers 503 when the broker is unreachable', async () => {
    // Prepare
    const broker = fakeBroker({
      failWith: new BrokerError('redis://127.0.0.1:1/0 is unreachable'),
    });

    // Act
    const { status, body } = await callHttp(post('app.ping', '{}'), broker);

    // Assess
    expect(status).toBe(503);
    expect(body).toEqual({ error: 'redis://127.0.0.1:1/0 is unreachable' });
    expect(broker.published).toEqual([]);
  });

  it('fails the invocation for a broker error that is not a BrokerError', async () => {
    // Prepare
    const broker = fakeBroker({ failWith: new RangeError('a bug in the adapter') });

    // Act
    const called = callHttp(post('app.ping', '{}'), broker);

    // Assess
    await expect(called).rejects.toThrow(RangeError);
  });
});

describe('the invoke producer', () => {
  it('publishes the call and answers 202 with the task id', async () => {
    // Act
    const { result, broker } = await callInvoke({
      task: 'app.save',
      kwargs: { event_id: 'evt-1' },
      countdown: 60,
    });

    // Assess
    expect(result).toEqual({ status: 202, id: broker.published[0]?.id, task: 'app.save' });
    expect(broker.published[0]?.eta).toBeInstanceOf(Date);
  });

  it.each<[string, unknown, number, Record<string, unknown>]>([
    [
      'a missing task name',
      { kwargs: {} },
      400,
      { issues: [{ path: 'task', message: 'required: the task name' }] },
    ],
    [
      'an empty event',
      null,
      400,
      { issues: [{ path: 'task', message: 'required: the task name' }] },
    ],
    ['an unknown task', { task: 'app.nope' }, 404, { error: 'unregistered task: app.nope' }],
    [
      'kwargs failing the task schema',
      { task: 'app.save', kwargs: { event_id: 7 } },
      400,
      { issues: [{ path: 'kwargs.event_id', message: expect.any(String) }] },
    ],
    [
      'an unknown key in the call',
      { task: 'app.ping', queue: 'elsewhere' },
      400,
      { issues: [{ path: 'queue', message: 'unknown option (check the spelling)' }] },
    ],
    [
      "arguments over the task's maxArgumentBytes",
      { task: 'app.save', kwargs: { event_id: 'x'.repeat(600) } },
      413,
      { error: expect.stringMatching(/over the limit of 512 bytes/) },
    ],
  ])('answers %s with %i', async (_, event, status, answer) => {
    // Act
    const { result, broker } = await callInvoke(event);

    // Assess
    expect(result).toMatchObject({ status, ...answer });
    expect(broker.published).toEqual([]);
  });

  it('answers 503 when the broker is unreachable', async () => {
    // Prepare
    const broker = fakeBroker({ failWith: new BrokerError('broker down') });

    // Act
    const { result } = await callInvoke({ task: 'app.ping' }, broker);

    // Assess
    expect(result).toEqual({ status: 503, error: 'broker down' });
    expect(broker.published).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { RedisResultBackend } from '../../../src/brokers/redis/redis-result-backend.js';
import { InvalidConfigError } from '../../../src/core/errors.js';
import { createRegistry } from '../../../src/core/registry.js';
import { pendingMeta, type ResultMeta } from '../../../src/core/result-backend.js';
import { createHttpProducerHandler } from '../../../src/lambda/producer-handlers.js';
import type { LambdaRuntime } from '../../../src/lambda/runtime.js';
import { fakeBroker, fakeContext } from '../../helpers/lambda.js';
import { httpApiEvent } from '../../helpers/lambda-events.js';

const ID = 'd9b1d7db-7c4a-4a4c-9f0e-3f1f6a0c2b11';
const TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/app/secret.py", line 3';

/** A stored meta of `ID` in `status`, with a traceback whatever the state. */
function meta(status: ResultMeta['status'], result: ResultMeta['result']): ResultMeta {
  return { ...pendingMeta(ID), status, result, traceback: TRACEBACK, children: ['child'] };
}

/** A result backend holding `stored`, recording the ids it is asked for; or failing with `failWith`. */
function fakeBackend(stored: ResultMeta[] = [], failWith?: Error) {
  const asked: string[] = [];
  return {
    asked,
    async getMeta(id: string): Promise<ResultMeta> {
      asked.push(id);
      if (failWith) throw failWith;
      return stored.find((item) => item.task_id === id) ?? pendingMeta(id);
    },
  };
}

/** Calls `GET /results/{id}` on an HTTP producer built with `results`. */
async function getResult(
  id: string | undefined,
  backend: ReturnType<typeof fakeBackend> | null = fakeBackend(),
  results = true,
) {
  const runtime: LambdaRuntime = {
    registry: createRegistry({ tasks: [], queues: [] }),
    broker: () => fakeBroker(),
    resultBackend: () => backend as unknown as RedisResultBackend | null,
  };
  const event = httpApiEvent({
    method: 'GET',
    path: `/results/${id ?? ''}`,
    routeKey: 'GET /results/{id}',
    ...(id === undefined ? {} : { pathParameters: { id } }),
  });
  const response = await createHttpProducerHandler(runtime, { results })(event, fakeContext());
  return {
    status: response.statusCode,
    body: JSON.parse(response.body ?? 'null') as Record<string, unknown>,
  };
}

describe('the result route of the HTTP producer (GET /results/{id})', () => {
  it.each<[string, ResultMeta, Record<string, unknown>]>([
    ['a success with its value', meta('SUCCESS', { total: 3 }), { result: { total: 3 } }],
    ['a success of null', meta('SUCCESS', null), { result: null }],
    [
      'a failure as exc_type and exc_message only',
      meta('FAILURE', {
        exc_type: 'ValueError',
        exc_message: ['bad input'],
        exc_module: 'builtins',
      }),
      { result: { exc_type: 'ValueError', exc_message: ['bad input'] } },
    ],
    [
      'a revoked task as its exception',
      meta('REVOKED', { exc_type: 'TaskRevokedError', exc_message: [], exc_module: 'celery' }),
      { result: { exc_type: 'TaskRevokedError', exc_message: [] } },
    ],
    ['a task still running without a result', meta('STARTED', { pid: 42 }), {}],
    [
      'a task waiting to retry without its exception',
      meta('RETRY', { exc_type: 'Busy', exc_message: ['try later'], exc_module: 'x' }),
      {},
    ],
  ])('answers 200 with the state, and for %s', async (_, stored, expected) => {
    // Act
    const { status, body } = await getResult(ID, fakeBackend([stored]));

    // Assess
    expect(status).toBe(200);
    expect(body).toEqual({ id: ID, state: stored.status, ...expected });
    expect(JSON.stringify(body)).not.toContain('Traceback');
  });

  it('answers PENDING for an id nothing is stored for, as Celery does', async () => {
    // Act
    const { status, body } = await getResult('my-own-id');

    // Assess
    expect(status).toBe(200);
    expect(body).toEqual({ id: 'my-own-id', state: 'PENDING' });
  });

  it.each([
    ['a key pattern', 'celery-task-meta-*'],
    ['a path', '../../etc/passwd'],
    ['a space', 'a b'],
    ['a percent escape', 'a%2Fb'],
    ['an empty id', ''],
    ['no id', undefined],
    ['an id over 255 characters', 'a'.repeat(256)],
  ])('answers 400 for %s, asking the backend nothing', async (_, id) => {
    // Prepare
    const backend = fakeBackend();

    // Act
    const { status, body } = await getResult(id, backend);

    // Assess
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid task id', issues: [{ path: 'id' }] });
    expect(backend.asked).toEqual([]);
  });

  it('reads an id of 255 letters, digits and ._:- as it is', async () => {
    // Prepare
    const backend = fakeBackend();
    const id = `app:run_1.2-${'x'.repeat(243)}`;

    // Act
    const { status } = await getResult(id, backend);

    // Assess
    expect(status).toBe(200);
    expect(backend.asked).toEqual([id]);
  });

  it('answers 404 to a GET when the app has not opted in, asking the backend nothing', async () => {
    // Prepare
    const backend = fakeBackend([meta('SUCCESS', 1)]);

    // Act
    const { status, body } = await getResult(ID, backend, false);

    // Assess
    expect(status).toBe(404);
    expect(body).toEqual({ error: 'no such route: results are off' });
    expect(backend.asked).toEqual([]);
  });

  it('answers 503 when the result backend is unreachable', async () => {
    // Prepare
    const backend = fakeBackend([], new Error('connect ECONNREFUSED 127.0.0.1:1'));

    // Act
    const { status, body } = await getResult(ID, backend);

    // Assess
    expect(status).toBe(503);
    expect(body).toEqual({
      error: 'the result backend is unreachable: connect ECONNREFUSED 127.0.0.1:1',
    });
  });

  it('fails the invocation, naming the setting, when the runtime has no result backend', async () => {
    // Act
    const called = getResult(ID, null);

    // Assess
    await expect(called).rejects.toThrow(InvalidConfigError);
    await expect(called).rejects.toThrow(/resultBackend: GET \/results\/\{id\} needs a result/);
  });

  it('still publishes on POST when the result route is on', async () => {
    // Prepare
    const broker = fakeBroker();
    const registry = createRegistry({ tasks: [], queues: [] });
    const handler = createHttpProducerHandler(
      { registry, broker: () => broker, resultBackend: () => null },
      { results: true },
    );

    // Act
    const response = await handler(
      httpApiEvent({ method: 'POST', path: '/tasks/nope', pathParameters: { name: 'nope' } }),
      fakeContext(),
    );

    // Assess
    expect(response.statusCode).toBe(404);
    expect(JSON.parse(response.body ?? '{}')).toEqual({ error: 'unregistered task: nope' });
  });
});

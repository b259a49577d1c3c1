/**
 * The packaged bundles on the functions' runtime: serverless.yml deploys `nodejs22.x` while these
 * machines run Node 20. The demo service is packaged twice, offline and each in a copy of the
 * service (test/helpers/package-service-copy.ts): for Redis, and for RabbitMQ on a throw-away
 * vhost as Amazon MQ is deployed, the URL without credentials and the credentials in a secret
 * (`brokerSecretArn`), read through the runtime's SDK from a Secrets Manager stand-in
 * (test/helpers/secrets-manager.ts, AWS_ENDPOINT_URL_SECRETS_MANAGER). Every function's zip is unpacked and its handler imported by an execution environment
 * of its own under Node 22 (test/helpers/node22.ts fetches the binary from the npm registry;
 * test/helpers/packaged-function.ts forks test/helpers/lambda-environment.mjs with the function's
 * template environment and links only `@aws-sdk`, which the runtime provides, beside the bundle).
 * Then each handler is invoked with the event AWS sends it and a context that counts down:
 * events-api and both producers publish, the cron function publishes once per tick, the task
 * function runs a batch as the drainer sends it, and the Redis poller or the Amazon MQ dispatcher
 * drains the queue by invoking the task functions through a stand-in for Lambda's Invoke API
 * (AWS_ENDPOINT_URL_LAMBDA), whose handlers run under Node 22 too. Outcomes are read back from the
 * brokers (through the adapters, in this process) and from the demo's store.
 *
 * Redis: database 1 belongs to this file (broker, store, cron locks and poller relay of both
 * packagings, and the result backend of the Redis one, whose stored results real Celery reads;
 * no other file uses it), emptied before and after. RabbitMQ: the vhost is removed
 * afterwards.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Channel, type ChannelModel, connect, type GetMessage } from 'amqplib';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/brokers/broker.js';
import { createBroker } from '../../src/brokers/create-broker.js';
import { toRmqEvent } from '../../src/cli/local-amazon-mq-event.js';
import type { TaskMessage } from '../../src/core/message.js';
import type { TaskOutcome } from '../../src/core/task-outcome.js';
import { toRawDelivery } from '../../src/core/wire.js';
import { registry } from '../../src/demo/registry.js';
import { cleanup, EVENTS_QUEUE, saveEvent } from '../../src/demo/tasks.js';
import { taskFunctionKey } from '../../src/lambda/function-names.js';
import type { TaskInvocation } from '../../src/lambda/task-handler.js';
import { PYTHON } from '../helpers/celery.js';
import { expectDecoded } from '../helpers/decode.js';
import { type LambdaEndpoint, startLambdaEndpoint } from '../helpers/lambda-endpoint.js';
import { httpApiEvent, minuteTick, scheduledEvent } from '../helpers/lambda-events.js';
import { NODE22_VERSION, node22Binary } from '../helpers/node22.js';
import { type PackagedCopy, packageServiceCopy } from '../helpers/package-service-copy.js';
import {
  type InvokeResult,
  type LambdaEnvironment,
  packagedFunctions,
  startEnvironment,
  unpackFunction,
} from '../helpers/packaged-function.js';
import { createTestVhost, type TestVhost } from '../helpers/rabbitmq.js';
import { redisUrl } from '../helpers/redis.js';
import {
  type SecretsManagerStandIn,
  secretArn,
  startSecretsManagerStandIn,
} from '../helpers/secrets-manager.js';

const run = promisify(execFile);
const DB = 1;
const STORE_URL = redisUrl(DB);
const SAVE_EVENT_KEY = taskFunctionKey(saveEvent.name);
const CLEANUP_KEY = taskFunctionKey(cleanup.name);
const CRON_KEY = `cron-${CLEANUP_KEY.slice('task-'.length)}`;
/** The poller's `stopTakingAtMs` default: a context with this much left stops taking at once. */
const POLLER_STOP_TAKING_AT_MS = 60_000;
/** How long the poller drains: it stops taking once its remaining time falls under the above. */
const POLLER_DRAIN_MS = 3_000;

type Kind = 'redis' | 'rabbitmq';
/** The packaging that stores results (`resultBackend` param: database {@link DB}). */
const RESULTS_KIND: Kind = 'redis';

/** How a packaging reaches its broker. */
interface BrokerAccess {
  /** What this process connects with: the credentials, if any, in the URL. */
  readonly url: string;
  /** The `brokerUrl` param: {@link url}, without the credentials when they are in the secret. */
  readonly param: string;
  /** The `brokerSecretArn` param: the secret of the credentials, if any. */
  readonly secretArn?: string;
}

/** One packaging, running: an environment per function, and the Invoke stand-in they share. */
interface Deployment {
  readonly kind: Kind;
  readonly access: BrokerAccess;
  readonly packaged: PackagedCopy;
  readonly functions: Map<string, LambdaEnvironment>;
  readonly endpoint: LambdaEndpoint;
}

const deployments = new Map<Kind, Deployment>();
const environments: LambdaEnvironment[] = [];
const endpoints: LambdaEndpoint[] = [];
let node: string;
let workDir: string | undefined;
let admin: Redis;
let vhost: TestVhost | undefined;
let secrets: SecretsManagerStandIn | undefined;
/** The RabbitMQ user of the secret: the only one with permissions on the vhost. */
let rabbitmqUser: { name: string; password: string } | undefined;

/** Packages the service for `kind`, unpacks every function and starts it under Node 22. */
async function deploy(kind: Kind, access: BrokerAccess): Promise<Deployment> {
  const dir = path.join(workDir as string, kind);
  const params: Record<string, string> = { brokerUrl: access.param, storeUrl: STORE_URL };
  // Results on one packaging only: the other is the build without them.
  if (kind === RESULTS_KIND) params.resultBackend = STORE_URL;
  if (access.secretArn) params.brokerSecretArn = access.secretArn;
  // No rabbitmqArn: the template then maps no event source; the test plays it.
  if (kind === 'rabbitmq') params.broker = 'rabbitmq';
  const packaged = await packageServiceCopy(dir, { params });
  const functions = new Map<string, LambdaEnvironment>();
  const invokers = new Map<string, (event: unknown) => Promise<InvokeResult>>();
  const endpoint = await startLambdaEndpoint(invokers);
  endpoints.push(endpoint);
  await Promise.all(
    [...packagedFunctions(packaged).values()].map(async (fn) => {
      const unpacked = await unpackFunction(fn, path.join(dir, 'functions'));
      const environment = await startEnvironment(unpacked, {
        node,
        // The SDK's own endpoint settings: the code takes the path it takes in AWS.
        env: {
          AWS_ENDPOINT_URL_LAMBDA: endpoint.url,
          AWS_ENDPOINT_URL_SECRETS_MANAGER: (secrets as SecretsManagerStandIn).endpoint,
        },
      });
      environments.push(environment);
      functions.set(fn.key, environment);
      invokers.set(fn.name, (event) => environment.invoke(event));
    }),
  );
  const inits = [...functions.values()].map((env) => `${env.fn.key} ${env.initMs.toFixed(0)}`);
  console.info(
    `${kind}: packaged in ${packaged.ms.toFixed(0)} ms; init under ${node} (ms): ${inits.join(', ')}`,
  );
  return { kind, access, packaged, functions, endpoint };
}

function deployment(kind: Kind): Deployment {
  const found = deployments.get(kind);
  if (!found) throw new Error(`the ${kind} packaging did not start: see beforeAll`);
  return found;
}

/** Invokes `key` of `kind` and returns what its handler returned; fails the test on an error. */
async function invoke(
  kind: Kind,
  key: string,
  event: unknown,
  options: { remainingMs?: number } = {},
): Promise<unknown> {
  const environment = deployment(kind).functions.get(key);
  if (!environment) throw new Error(`${kind} has no function ${key}`);
  const result = await environment.invoke(event, options);
  if (!result.ok) {
    const { errorType, errorMessage, trace } = result.error;
    expect.fail(
      `${kind} ${key} failed: ${errorType}: ${errorMessage}\n${trace.join('\n')}\nlogs:\n${environment.logs().slice(-3000)}`,
    );
  }
  return result.payload;
}

/** Celery's view (Debian's 5.2.6) of results in database {@link DB}: state, and value or exception type. */
async function pythonResults(ids: readonly string[]): Promise<unknown[]> {
  const script = [
    'import json, sys',
    'from celery import Celery',
    "app = Celery('node22-results', backend=sys.argv[1])",
    'def view(r):',
    "    return {'state': r.state, 'result': type(r.result).__name__ if isinstance(r.result, Exception) else r.result}",
    'print(json.dumps([view(app.AsyncResult(i)) for i in sys.argv[2:]]))',
  ].join('\n');
  const { stdout } = await run(PYTHON, ['-c', script, STORE_URL, ...ids], { timeout: 30_000 });
  return JSON.parse(stdout) as unknown[];
}

/** An HTTP API response's status and JSON body. */
function httpResult(payload: unknown): { status: number; body: Record<string, unknown> } {
  const response = payload as { statusCode: number; body: string };
  return { status: response.statusCode, body: JSON.parse(response.body) };
}

/** `POST /events` on events-api: the event's id and its task's id. */
async function postEvent(kind: Kind, payload: unknown): Promise<{ id: string; taskId: string }> {
  const event = httpApiEvent({ method: 'POST', path: '/events', body: payload });
  const { status, body } = httpResult(await invoke(kind, 'events-api', event));
  expect(status, JSON.stringify(body)).toBe(202);
  return { id: body.id as string, taskId: body.task_id as string };
}

/** `GET /events/{id}` on events-api: the stored event's status and attempts. */
async function storedEvent(kind: Kind, id: string): Promise<{ status: string; attempts: number }> {
  const event = httpApiEvent({
    method: 'GET',
    path: `/events/${id}`,
    routeKey: 'GET /events/{id}',
    pathParameters: { id },
  });
  const { status, body } = httpResult(await invoke(kind, 'events-api', event));
  expect(status, JSON.stringify(body)).toBe(200);
  return { status: body.status as string, attempts: body.attempts as number };
}

/** Runs `use` with a broker of this process on `kind`'s broker, closed afterwards. */
async function withBroker<T>(kind: Kind, use: (broker: Broker) => Promise<T>): Promise<T> {
  const broker = createBroker(deployment(kind).access.url, { queues: registry.queues });
  try {
    return await use(broker);
  } finally {
    await broker.close();
  }
}

/**
 * Takes `expected` messages of the demo's queue (waiting up to 5 s for them), settled as done,
 * and returns them decoded; with no `expected`, takes what is there until a receive finds none.
 */
async function takeAll(kind: Kind, expected?: number): Promise<TaskMessage[]> {
  return withBroker(kind, async (broker) => {
    const taken: TaskMessage[] = [];
    const deadline = Date.now() + 5_000;
    while (taken.length < (expected ?? Number.POSITIVE_INFINITY) && Date.now() < deadline) {
      const deliveries = await broker.receive(EVENTS_QUEUE, { max: 100, waitMs: 200 });
      if (deliveries.length === 0 && expected === undefined) break;
      await broker.settle(
        deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })),
      );
      taken.push(...deliveries.map((delivery) => expectDecoded(delivery.result)));
    }
    return taken;
  });
}

/** The broker's counts of the demo's queue, and its dead letters. */
async function queueState(kind: Kind) {
  return withBroker(kind, async (broker) => ({
    stats: await broker.stats(EVENTS_QUEUE),
    deadLetters: await broker.deadLetters(EVENTS_QUEUE, 10),
  }));
}

beforeAll(async () => {
  const started = performance.now();
  workDir = await mkdtemp(path.join(tmpdir(), 'sc-node22-'));
  admin = new Redis(STORE_URL, { maxRetriesPerRequest: 1 });
  await admin.flushdb();
  [node, vhost, secrets] = await Promise.all([
    node22Binary(),
    createTestVhost('node22'),
    startSecretsManagerStandIn(),
  ]);
  // RabbitMQ as deployed on Amazon MQ: the URL without credentials, which are in the secret.
  // They name a user of this file's, and guest loses the vhost: a function that ignored the
  // secret would log in as amqplib's default guest and be refused.
  rabbitmqUser = { name: `sc-test-node22-${randomUUID().slice(0, 8)}`, password: randomUUID() };
  const rabbitmqUrl = await ownVhost(vhost, rabbitmqUser);
  const rabbitmqAccess = {
    url: rabbitmqUrl,
    param: withoutCredentials(rabbitmqUrl),
    secretArn: secretArn('node22-rabbitmq'),
  };
  secrets.put(
    rabbitmqAccess.secretArn,
    JSON.stringify({ username: rabbitmqUser.name, password: rabbitmqUser.password }),
  );
  const [redis, rabbitmq] = await Promise.all([
    deploy('redis', { url: redisUrl(DB), param: redisUrl(DB) }),
    deploy('rabbitmq', rabbitmqAccess),
  ]);
  deployments.set('redis', redis);
  deployments.set('rabbitmq', rabbitmq);
  console.info(`node22-bundles: set up in ${(performance.now() - started).toFixed(0)} ms`);
}, 180_000);

afterEach(async () => {
  // What a test left in the demo's queue or its dead letters must not reach the next test.
  for (const kind of deployments.keys()) {
    await takeAll(kind);
    await withBroker(kind, (broker) => broker.purgeDeadLetters(EVENTS_QUEUE));
  }
  for (const endpoint of endpoints) endpoint.calls.length = 0;
});

afterAll(async () => {
  await Promise.all(environments.map((environment) => environment.stop()));
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));
  await secrets?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
  await vhost?.remove();
  if (rabbitmqUser) await run('rabbitmqctl', ['delete_user', '-q', rabbitmqUser.name]);
  if (admin) {
    await admin.flushdb();
    await admin.quit();
  }
});

describe.each<{ kind: Kind; drainer: 'poller' | 'dispatcher' }>([
  { kind: 'redis', drainer: 'poller' },
  { kind: 'rabbitmq', drainer: 'dispatcher' },
])('the $kind bundles under Node 22', ({ kind, drainer }) => {
  it(`imports the handler of every packaged function, the ${drainer} among them, on nodejs22.x`, () => {
    const { functions, access } = deployment(kind);
    const pinned = process.env.NODE22_BIN ? /^v22\./ : new RegExp(`^v${NODE22_VERSION}$`);

    expect([...functions.keys()].sort()).toEqual(
      [
        'events-api',
        'producer-http',
        'producer-invoke',
        SAVE_EVENT_KEY,
        CLEANUP_KEY,
        CRON_KEY,
        drainer,
      ].sort(),
    );
    for (const [key, environment] of functions) {
      expect(environment.node, key).toMatch(/^v22\./);
      expect(environment.node, key).toMatch(pinned);
      expect(environment.fn.runtime, key).toBe('nodejs22.x');
      expect(environment.fn.entries, key).toEqual([
        path.relative(environment.fn.taskRoot, environment.fn.file),
      ]);
      // The variables the environment runs with are the template's, params resolved.
      expect(environment.fn.environment, key).toMatchObject({
        BROKER_URL: access.param,
        STORE_URL,
        ...(access.secretArn ? { BROKER_SECRET_ARN: access.secretArn } : {}),
      });
    }
  });

  it('stores a POST /events as pending and publishes ingest.save_event for it', async () => {
    // Act
    const posted = await postEvent(kind, { user: 'ada' });

    // Assess
    expect(await storedEvent(kind, posted.id)).toEqual({ status: 'pending', attempts: 0 });
    const [message, ...others] = await takeAll(kind, 1);
    expect(others).toEqual([]);
    expect(message).toMatchObject({
      id: posted.taskId,
      task: saveEvent.name,
      kwargs: { event_id: posted.id },
    });
  });

  it('publishes a call from POST /tasks/{name} and from a direct invoke, and refuses an unknown task', async () => {
    // Act
    const http = httpResult(
      await invoke(
        kind,
        'producer-http',
        httpApiEvent({
          method: 'POST',
          path: `/tasks/${saveEvent.name}`,
          routeKey: 'POST /tasks/{name}',
          pathParameters: { name: saveEvent.name },
          body: { kwargs: { event_id: 'from-http' } },
        }),
      ),
    );
    const direct = await invoke(kind, 'producer-invoke', {
      task: saveEvent.name,
      kwargs: { event_id: 'from-invoke' },
    });
    const unknown = await invoke(kind, 'producer-invoke', { task: 'no.such_task' });

    // Assess
    expect(http).toMatchObject({ status: 202, body: { task: saveEvent.name } });
    expect(direct).toMatchObject({ status: 202, task: saveEvent.name });
    expect(unknown).toMatchObject({ status: 404 });
    const taken = await takeAll(kind, 2);
    expect(taken.map((message) => [message.id, message.kwargs]).sort()).toEqual(
      [
        [http.body.id, { event_id: 'from-http' }],
        [(direct as { id: string }).id, { event_id: 'from-invoke' }],
      ].sort(),
    );
  });

  it('publishes ingest.cleanup once for a tick delivered twice', async () => {
    // Prepare
    const tick = minuteTick(30);

    // Act
    const first = await invoke(kind, CRON_KEY, scheduledEvent(tick));
    const again = await invoke(kind, CRON_KEY, scheduledEvent(tick));

    // Assess
    expect(first).toMatchObject({ published: true, tick: tick.toISOString() });
    expect(again).toEqual({
      published: false,
      tick: tick.toISOString(),
      reason: 'already published for this tick',
    });
    const taken = await takeAll(kind, 1);
    expect(taken.map((message) => [message.id, message.task])).toEqual([
      [(first as { id: string }).id, cleanup.name],
    ]);
  });

  it('runs a batch of ingest.save_event as the drainer sends it: saved, gone, bug', async () => {
    // Prepare
    const saved = await postEvent(kind, {});
    const buggy = await postEvent(kind, { simulate: 'bug' });
    await takeAll(kind, 2);
    const messages = [saved.id, 'no-such-event', buggy.id].map((id) =>
      saveEvent.createMessage({ kwargs: { event_id: id } }),
    );
    const invocation: TaskInvocation = { messages: messages.map(toRawDelivery) };

    // Act
    const result = (await invoke(kind, SAVE_EVENT_KEY, invocation)) as {
      outcomes: TaskOutcome[];
    };

    // Assess
    const [done, gone, bug] = result.outcomes;
    expect(result.outcomes).toHaveLength(3);
    expect(done).toMatchObject({ kind: 'succeeded' });
    expect(gone).toMatchObject({ kind: 'ignored', errorType: 'EventNotFoundError' });
    expect(bug).toMatchObject({
      kind: 'dead',
      reason: { task: saveEvent.name, id: messages[2]?.id, errorType: 'TypeError' },
    });
    expect(await storedEvent(kind, saved.id)).toEqual({ status: 'saved', attempts: 1 });
    expect(await storedEvent(kind, buggy.id)).toEqual({ status: 'pending', attempts: 1 });
  });

  it(`drains the queue with the ${drainer}, whose invokes run the task functions under Node 22`, async () => {
    // Prepare: what events-api and the cron function publish.
    const saved = await postEvent(kind, {});
    const buggy = await postEvent(kind, { simulate: 'bug' });
    const tick = (await invoke(kind, CRON_KEY, scheduledEvent(minuteTick(20)))) as { id: string };
    const { functions, endpoint, packaged } = deployment(kind);

    // Act
    const result = kind === 'redis' ? await pollOnce() : await dispatchQueue();

    // Assess
    expect(result).toEqual(
      kind === 'redis'
        ? { settled: 3, released: 0, stopped: 'hard stop' }
        : { succeeded: 2, dead: 1 },
    );
    const invoked = endpoint.calls.flatMap((call) =>
      (call.event as TaskInvocation).messages.map((raw) => [
        call.functionName.slice(packaged.prefix.length),
        (raw.headers as { id?: string }).id,
        call.result?.ok,
      ]),
    );
    expect(invoked.sort()).toEqual(
      [
        [CLEANUP_KEY, tick.id, true],
        [SAVE_EVENT_KEY, saved.taskId, true],
        [SAVE_EVENT_KEY, buggy.taskId, true],
      ].sort(),
    );
    expect(await storedEvent(kind, saved.id)).toEqual({ status: 'saved', attempts: 1 });
    expect(await storedEvent(kind, buggy.id)).toEqual({ status: 'pending', attempts: 1 });
    const { stats, deadLetters } = await queueState(kind);
    expect(stats).toMatchObject({ ready: 0, unacked: 0, delayed: 0, deadLettered: 1 });
    expect(deadLetters).toMatchObject([
      { task: saveEvent.name, id: buggy.taskId, errorType: 'TypeError' },
    ]);
    expect(functions.get(drainer)?.logs() ?? '').not.toMatch(/\bwarn|Error\b/i);
    // Results: stored by the packaging with a result backend, read by real Celery's get();
    // nothing stored by the one without.
    const stored = await pythonResults([saved.taskId, buggy.taskId]);
    expect(stored).toEqual(
      kind === RESULTS_KIND
        ? [
            { state: 'SUCCESS', result: { saved: saved.id, attempt: 1 } },
            { state: 'FAILURE', result: 'TypeError' },
          ]
        : [
            { state: 'PENDING', result: null },
            { state: 'PENDING', result: null },
          ],
    );
  });
});

describe('the rabbitmq bundles with the broker credentials in Secrets Manager', () => {
  it('reads the secret through the runtime SDK once per cold start, not from the environment', async () => {
    // Prepare
    const { functions, access } = deployment('rabbitmq');
    const arn = access.secretArn as string;
    const standIn = secrets as SecretsManagerStandIn;
    const call = { task: saveEvent.name, kwargs: { event_id: 'secret-check' } };

    // Act
    const first = await invoke('rabbitmq', 'producer-invoke', call);
    const fetchedAfterFirst = standIn.callsOf(arn);
    const second = await invoke('rabbitmq', 'producer-invoke', call);

    // Assess
    expect([first, second]).toMatchObject([{ status: 202 }, { status: 202 }]);
    expect(await takeAll('rabbitmq', 2)).toHaveLength(2);
    expect(fetchedAfterFirst).toBeGreaterThanOrEqual(1);
    expect(standIn.callsOf(arn), 'a fetch on a warm invocation').toBe(fetchedAfterFirst);
    // At most one fetch per execution environment, whatever the tests before invoked.
    expect(standIn.callsOf(arn)).toBeLessThanOrEqual(functions.size);
    for (const [key, environment] of functions) {
      expect(new URL(environment.fn.environment.BROKER_URL ?? '').password, key).toBe('');
    }
  });
});

/**
 * Invokes the Redis poller for the current tick with a context that has {@link POLLER_DRAIN_MS}
 * left before its hard stop: it drains that long, then settles what it holds and returns.
 */
async function pollOnce(): Promise<unknown> {
  return invoke('redis', 'poller', scheduledEvent(minuteTick(0)), {
    remainingMs: POLLER_STOP_TAKING_AT_MS + POLLER_DRAIN_MS,
  });
}

/**
 * Plays Amazon MQ's event source for the dispatcher: takes the demo queue's messages off the
 * vhost, frames them as its `aws:rmq` event (as `npm start` does), invokes the dispatcher and
 * acknowledges the batch once it has returned.
 */
async function dispatchQueue(): Promise<unknown> {
  const brokerUrl = deployment('rabbitmq').access.url;
  let connection: ChannelModel | undefined;
  try {
    connection = await connect(brokerUrl);
    const channel: Channel = await connection.createChannel();
    const taken: GetMessage[] = [];
    const deadline = Date.now() + 5_000;
    while (taken.length < 3 && Date.now() < deadline) {
      const message = await channel.get(EVENTS_QUEUE, { noAck: false });
      if (message) taken.push(message);
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(taken, 'messages in the queue for the event').toHaveLength(3);
    // basic.get's fields lack the consumer tag of a consumed message; the event has none either.
    const consumed = taken.map((message) => ({
      ...message,
      fields: { ...message.fields, consumerTag: '' },
    }));
    const event = toRmqEvent(EVENTS_QUEUE, (vhost as TestVhost).name, consumed);
    const result = await invoke('rabbitmq', 'dispatcher', event);
    for (const message of taken) channel.ack(message);
    await channel.close();
    return result;
  } finally {
    await connection?.close();
  }
}

/** `url` without its user name and password. */
function withoutCredentials(url: string): string {
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  return bare.href;
}

/**
 * Adds `user` with every permission on `vhost` and takes guest's away; returns the vhost's URL
 * with `user`'s credentials. The caller deletes the user.
 */
async function ownVhost(
  vhost: TestVhost,
  user: { readonly name: string; readonly password: string },
): Promise<string> {
  await run('rabbitmqctl', ['add_user', '-q', user.name, user.password]);
  await run('rabbitmqctl', [
    'set_permissions',
    '-q',
    '-p',
    vhost.name,
    user.name,
    '.*',
    '.*',
    '.*',
  ]);
  await run('rabbitmqctl', ['clear_permissions', '-q', '-p', vhost.name, 'guest']);
  const url = new URL(vhost.url);
  url.username = encodeURIComponent(user.name);
  url.password = encodeURIComponent(user.password);
  return url.href;
}

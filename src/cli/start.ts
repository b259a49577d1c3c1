/**
 * `npm start`: the whole service on this machine, in one command. serverless-offline runs every
 * function of `serverless.yml` (HTTP API on :3000, Lambda Invoke API on :3002, schedule events),
 * and a long-lived local poller plays the part AWS plays for the queues:
 *
 * - Redis: the `poller` function's loop, invoking each task's function through :3002 with the
 *   AWS SDK, exactly as the deployed poller does. The scheduled `poller` inside
 *   serverless-offline is switched off (`--param=pollerSchedule=false`): it would race this one,
 *   and serverless-offline knows no reserved concurrency, so each minute would start one more
 *   14-minute drain. A long-lived process also shows every outcome as it happens;
 * - RabbitMQ: the Amazon MQ event source, which serverless-offline ignores: `aws:rmq` events
 *   to the `dispatcher` function through :3002, acknowledged once it succeeded.
 *
 * `BROKER_URL` (default the local Redis) picks the broker; `STORE_URL` the demo's event store
 * (default: the broker when it is Redis, else the local Redis); both reach the functions as
 * `serverless.yml` params. Ctrl-C stops the poller, which settles what it holds, then
 * serverless-offline, and exits 0.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { Redis } from 'ioredis';
import type { Broker } from '../brokers/broker.js';
import { createBroker } from '../brokers/create-broker.js';
import {
  type BrokerConfig,
  DEFAULT_BROKER_URL,
  describeEndpoint,
  parseBrokerConfig,
  redactUrl,
} from '../config/broker-config.js';
import { BrokerError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { feederBatchLines, runAmazonMqFeeder } from './local-amazon-mq.js';
import {
  functionPrefix,
  isListening,
  OfflineProcess,
  offlineLambdaClient,
} from './local-offline.js';
import { runLocalPoller } from './local-poller.js';
import { formatOutcomeLine, type OutcomeLine, workerEventLine } from './local-report.js';

/** Options of {@link runStart}; every one has a default for `npm start`. */
export interface StartOptions {
  /** @defaultValue `process.env.BROKER_URL`, else `redis://127.0.0.1:6379/0` */
  readonly brokerUrl?: string;
  /** The demo's event store. @defaultValue `process.env.STORE_URL`, else the broker if Redis, else the local Redis */
  readonly storeUrl?: string;
  /** The cron tick lock. @defaultValue `process.env.CRON_LOCK_URL`, else the broker */
  readonly cronLockUrl?: string;
  /** The app's registry (queues to drain, task function names). @defaultValue the demo's */
  readonly registry?: Registry;
  /** The service folder, with `serverless.yml`. @defaultValue the current directory */
  readonly cwd?: string;
  /** @defaultValue `dev` */
  readonly stage?: string;
  /** @defaultValue 3000 */
  readonly httpPort?: number;
  /** @defaultValue 3002 */
  readonly lambdaPort?: number;
  /** Stops everything, like Ctrl-C. @defaultValue SIGINT or SIGTERM */
  readonly signal?: AbortSignal;
  /** Where lines go. @defaultValue stdout */
  readonly print?: (line: string) => void;
}

/** Where serverless-offline listens: IPv4 loopback, so `localhost` and the SDK agree. */
const HOST = '127.0.0.1';

/** How long esbuild and serverless-offline may take to open their ports. */
const READY_TIMEOUT_MS = 120_000;

/**
 * Runs the local emulation until stopped.
 *
 * @returns the exit code: 0 after a clean stop, 1 when it could not start or serverless-offline
 *   died
 * @example
 * process.exitCode = await runStart({ brokerUrl: 'amqp://guest:guest@127.0.0.1:5672/' });
 */
export async function runStart(options: StartOptions = {}): Promise<number> {
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const cwd = options.cwd ?? process.cwd();
  const stage = options.stage ?? 'dev';
  const httpPort = options.httpPort ?? 3000;
  const lambdaPort = options.lambdaPort ?? 3002;
  const brokerUrl = options.brokerUrl ?? process.env.BROKER_URL ?? DEFAULT_BROKER_URL;
  let config: BrokerConfig;
  try {
    config = parseBrokerConfig(brokerUrl);
  } catch (error) {
    print(`BROKER_URL: ${(error as Error).message}`);
    return 1;
  }
  const storeUrl =
    options.storeUrl ??
    process.env.STORE_URL ??
    (config.kind === 'redis' ? brokerUrl : DEFAULT_BROKER_URL);
  // The broker holds its own tick locks (a RabbitMQ build carries no Redis client for them).
  const cronLockUrl = options.cronLockUrl ?? process.env.CRON_LOCK_URL ?? brokerUrl;
  const registry = options.registry ?? (await import('../demo/app.js')).registry;
  const queues = registry.queues.map((queue) => queue.name);
  let prefix: string;
  try {
    prefix = functionPrefix(cwd, stage);
  } catch (error) {
    print((error as Error).message);
    return 1;
  }

  const warn = (message: string) => print(`[poller] ${message}`);
  const broker = createBroker(config, { queues: registry.queues, logger: { warn } });
  const problem =
    (await brokerProblem(broker, config, queues[0] ?? 'celery')) ??
    (storeUrl === brokerUrl ? null : await redisProblem('store', storeUrl)) ??
    (await portProblem(httpPort, lambdaPort));
  if (problem) {
    print(problem);
    await broker.close();
    return 1;
  }

  const stop = new AbortController();
  const signals = stopOnSignals(stop, options.signal, print);
  const bootStarted = performance.now();
  print(
    `Starting serverless-offline (stage ${stage}): broker ${redactUrl(brokerUrl)}, store ${redactUrl(storeUrl)}`,
  );
  const offline = OfflineProcess.start({
    cwd,
    stage,
    host: HOST,
    httpPort,
    lambdaPort,
    // serverless-offline cannot start with the producer route's aws_iam authorizer. `broker`
    // picks the client the bundles carry (serverless.yml's esbuild define).
    params: {
      broker: config.kind,
      brokerUrl,
      storeUrl,
      cronLockUrl,
      pollerSchedule: 'false',
      producerAuth: 'none',
    },
    // serverless-offline spaces its output with blank lines; between live lines they only scroll.
    onLine: (line) => {
      if (line.trim() !== '') print(`[offline] ${line}`);
    },
  });
  print(`[offline] process group ${offline.pid}`);
  signals.onForce(() => offline.kill());
  try {
    await Promise.race([offline.waitReady(READY_TIMEOUT_MS), aborted(stop.signal)]);
  } catch (error) {
    print(`${(error as Error).message}; its output is above.`);
    await offline.stop();
    await broker.close();
    signals.dispose();
    return 1;
  }
  if (stop.signal.aborted) {
    await offline.stop();
    await broker.close();
    signals.dispose();
    return 0;
  }

  const endpoint = `http://${HOST}:${lambdaPort}`;
  const client = offlineLambdaClient(endpoint);
  try {
    const poller = startPoller({ config, broker, registry, client, prefix, stop, print });
    printBanner(print, {
      bootMs: performance.now() - bootStarted,
      httpPort,
      via:
        config.kind === 'redis'
          ? `the local poller drains ${queues.join(', ')} on ${describeEndpoint(brokerUrl)} and invokes ${prefix}task-* through ${endpoint}`
          : `the local Amazon MQ event source feeds ${queues.join(', ')} on ${describeEndpoint(brokerUrl)} to ${prefix}dispatcher through ${endpoint}`,
    });
    const ended = await Promise.race([
      poller.then(() => 'stopped' as const),
      offline.exited.then(() => 'offline exited' as const),
    ]);
    if (ended === 'offline exited' && !stop.signal.aborted) {
      print('serverless-offline exited on its own; its output is above. Stopping.');
      stop.abort();
      await poller;
      return 1;
    }
    await poller;
    return 0;
  } finally {
    // Whatever happened above, serverless-offline runs in a process group of its own and would
    // outlive us: stop it last, once the poller has settled what it held through it.
    await offline.stop();
    client.destroy();
    await broker.close();
    signals.dispose();
    print('Stopped.');
  }
}

/** Starts the Redis poller or the Amazon MQ feeder, whichever the broker needs. */
function startPoller(context: {
  readonly config: BrokerConfig;
  readonly broker: Broker;
  readonly registry: Registry;
  readonly client: LambdaClient;
  readonly prefix: string;
  readonly stop: AbortController;
  readonly print: (line: string) => void;
}): Promise<void> {
  const { config, registry, client, prefix, stop, print } = context;
  const report = (line: OutcomeLine) => print(formatOutcomeLine(line));
  const warn = (message: string) => print(`[poller] ${message}`);
  if (config.kind === 'redis') {
    return runLocalPoller({
      broker: context.broker,
      registry,
      client,
      functionPrefix: prefix,
      signal: stop.signal,
      onOutcome: (event) => report(workerEventLine(event)),
      warn,
    });
  }
  return runAmazonMqFeeder({
    url: config.url,
    registry,
    client,
    functionName: `${prefix}dispatcher`,
    signal: stop.signal,
    onBatch: (batch) => {
      for (const line of feederBatchLines(batch)) report(line);
    },
    warn,
  });
}

/** Where to send requests, and what the lines that follow mean. */
function printBanner(
  print: (line: string) => void,
  { bootMs, httpPort, via }: { bootMs: number; httpPort: number; via: string },
): void {
  const http = `http://localhost:${httpPort}`;
  print('');
  print(`Ready in ${(bootMs / 1000).toFixed(1)} s. Send requests to:`);
  print(`  POST ${http}/events          any JSON: stored, ingest.save_event published → 202 {id}`);
  print(`  GET  ${http}/events/{id}     the event: pending, then saved`);
  print(`  POST ${http}/tasks/{name}    {"args", "kwargs", "countdown", …} → 202 {id}`);
  print(`Tasks run in serverless-offline's functions: ${via}.`);
  print('One line per task outcome: time, task, id, attempt, outcome, duration. Ctrl-C stops.');
  print('');
}

/** One line naming an unreachable broker and the command that starts one, or null. */
async function brokerProblem(
  broker: Broker,
  config: BrokerConfig,
  queue: string,
): Promise<string | null> {
  try {
    await broker.stats(queue);
    return null;
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    // Refused credentials or a missing vhost are not solved by starting a server.
    if (/ failed: (access refused|vhost does not exist|authentication)/.test(error.message))
      return error.message;
    const start =
      config.kind === 'redis' ? redisServerCommand(config.url) : 'rabbitmq-server -detached';
    return `No broker: ${error.message}. Start one: ${start}`;
  }
}

/** One line naming an unreachable Redis (the store), or null. */
async function redisProblem(what: string, url: string): Promise<string | null> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // The failing connect() rejects with the reason; that is where it is reported.
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (error) {
    return `No ${what} Redis at ${describeEndpoint(url)} (${(error as Error).message}). Start one: ${redisServerCommand(url)}`;
  } finally {
    redis.disconnect();
  }
}

/** The README's command for a throw-away local Redis on the URL's port. */
function redisServerCommand(url: string): string {
  const port = new URL(url).port || '6379';
  return `redis-server --daemonize yes --bind 127.0.0.1 --port ${port} --save "" --appendonly no`;
}

/** One line naming a port already taken (another `npm start`?), or null. */
async function portProblem(...ports: number[]): Promise<string | null> {
  for (const port of ports) {
    if (await isListening(HOST, port)) {
      return `Port ${port} on ${HOST} is already in use (another npm start or serverless-offline?): stop it first.`;
    }
  }
  return null;
}

/**
 * SIGINT/SIGTERM (or `outer`) abort `stop`; a second signal forces: `onForce` callbacks run and
 * the process exits 130 without waiting for anything.
 */
function stopOnSignals(
  stop: AbortController,
  outer: AbortSignal | undefined,
  print: (line: string) => void,
) {
  const forces: (() => void)[] = [];
  let firstAt = 0;
  const onSignal = () => {
    // A terminal's Ctrl-C reaches us twice: directly (we are in its foreground group) and
    // forwarded by npm. Only a second press, later on, means "force".
    if (stop.signal.aborted && Date.now() - firstAt > 1_000) {
      print('Forced stop.');
      for (const force of forces) force();
      process.exit(130);
    }
    if (stop.signal.aborted) return;
    firstAt = Date.now();
    print('Stopping: the poller settles what it holds, then serverless-offline stops…');
    stop.abort();
  };
  const onOuter = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  outer?.addEventListener('abort', onOuter, { once: true });
  return {
    onForce: (force: () => void) => forces.push(force),
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      outer?.removeEventListener('abort', onOuter);
    },
  };
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

// `node --import tsx src/cli/start.ts` (`npm start`). Exits explicitly: the AWS SDK's keep-alive
// sockets and a slow Redis QUIT must not hold a stopped emulation open.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exit(await runStart());
}

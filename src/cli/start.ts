/**
 * `npm start`: `serverless-celery dev` for the demo service of this repository, on
 * serverless-offline's usual ports (HTTP :3000, Lambda Invoke API :3002), with what only the demo
 * has: its event store. `STORE_URL` (default: the broker when it is Redis, else the local Redis)
 * reaches its functions as the `storeUrl` param, and is checked before anything starts.
 * `BROKER_URL` picks the broker, as for every command; `RESULT_BACKEND` (a `redis://` URL) stores
 * results there, read by `serverless-celery result <id>` (`dev` takes it, see commands/dev.ts).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import {
  brokerKindOf,
  DEFAULT_BROKER_URL,
  describeEndpoint,
  redactUrl,
} from '../config/broker-config.js';
import { START_REDIS, startHint } from './broker-choice.js';
import { processContext } from './context.js';
import { EXIT_CODES } from './exit-codes.js';
import { main } from './main.js';

/** The demo app's module. */
export const DEMO_APP = fileURLToPath(new URL('../demo/app.ts', import.meta.url));

/** The demo's event store: `STORE_URL`, else the broker when it is Redis, else the local Redis. */
export function demoStoreUrl(env: Readonly<Record<string, string | undefined>>): string {
  const broker = env.BROKER_URL || DEFAULT_BROKER_URL;
  return env.STORE_URL || (brokerKindOf(broker) === 'redis' ? broker : DEFAULT_BROKER_URL);
}

/** The `serverless-celery` arguments `npm start` runs. */
export function startArgv(storeUrl: string): string[] {
  return [
    'dev',
    '--app',
    DEMO_APP,
    '--http-port',
    '3000',
    '--lambda-port',
    '3002',
    '--param',
    `storeUrl=${storeUrl}`,
  ];
}

/**
 * Runs the demo until stopped.
 *
 * @returns the exit code of `dev`; 69 when the store's Redis is unreachable
 */
export async function runStart(): Promise<number> {
  const context = processContext();
  const storeUrl = demoStoreUrl(context.env);
  const broker = context.env.BROKER_URL || DEFAULT_BROKER_URL;
  if (storeUrl !== broker) {
    const problem = await redisProblem(storeUrl);
    if (problem) {
      context.stderr(`${problem}\n`);
      return EXIT_CODES.unavailable;
    }
  }
  context.stderr(`npm start: the demo service, its event store on ${redactUrl(storeUrl)}\n`);
  return main(startArgv(storeUrl), context);
}

/** One line naming an unreachable store Redis and the command that starts one, or null. */
async function redisProblem(url: string): Promise<string | null> {
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
    const reason = (error as Error).message;
    const hint = startHint(url, 'redis', reason) ?? START_REDIS;
    return `No store Redis at ${describeEndpoint(url)} (${reason}). Start one: ${hint}`;
  } finally {
    redis.disconnect();
  }
}

// `node --import tsx src/cli/start.ts` (`npm start`). Exits explicitly: the AWS SDK's keep-alive
// sockets and a slow Redis QUIT must not hold a stopped emulation open.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exit(await runStart());
}

/**
 * serverless-offline serving the no-op app's task function (bench/lambda/serverless.yml), for
 * bench/lambda-path.ts: started as `npm start` starts it (`OfflineProcess`), but on free ports,
 * so a running `npm start` (3000, 3002) neither blocks it nor gets its invokes.
 */
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import {
  functionPrefix,
  isListening,
  OfflineProcess,
  offlineLambdaClient,
} from '../../src/cli/local-offline.js';
import { taskFunctionKey } from '../../src/lambda/function-names.js';
import type { LambdaInvoker } from '../../src/lambda/lambda-executor.js';
import { BENCH_DIR, log, NOOP_TASK, nowMs, round, waitUntil } from '../harness.js';

/** The service folder. */
const SERVICE_DIR = join(BENCH_DIR, 'lambda');
const STAGE = 'bench';
const HOST = '127.0.0.1';

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Runs `body` with serverless-offline up and `FUNCTION_PREFIX` set to the names it gives the
 * functions, then stops it and removes its build.
 *
 * @param warm - invokes sent at once before `body`: serverless-offline starts a worker thread
 *   per concurrent invoke (it knows no reserved concurrency), and the first start of each is
 *   not what `body` measures
 * @throws when serverless-offline exits or is not listening within 2 minutes
 */
export async function withOffline<T>(
  warm: number,
  body: (client: LambdaInvoker) => Promise<T>,
): Promise<T> {
  const [httpPort, lambdaPort] = [await freePort(), await freePort()];
  const tail: string[] = [];
  const started = nowMs();
  const offline = OfflineProcess.start({
    cwd: SERVICE_DIR,
    stage: STAGE,
    host: HOST,
    httpPort,
    lambdaPort,
    params: {},
    onLine: (line) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
    },
  });
  const client = offlineLambdaClient(`http://${HOST}:${lambdaPort}`);
  const previousPrefix = process.env.FUNCTION_PREFIX;
  try {
    // Only the Lambda port opens (OfflineProcess.waitReady waits for both): no HTTP events here.
    await waitUntil(
      async () => {
        if (offline.hasExited) throw new Error(`serverless-offline exited:\n${tail.join('\n')}`);
        return isListening(HOST, lambdaPort);
      },
      120_000,
      'serverless-offline',
      250,
    );
    log(`serverless-offline ready in ${round((nowMs() - started) / 1000)} s on :${lambdaPort}`);
    const prefix = functionPrefix(SERVICE_DIR, STAGE);
    process.env.FUNCTION_PREFIX = prefix;
    const command = new InvokeCommand({
      FunctionName: `${prefix}${taskFunctionKey(NOOP_TASK)}`,
      InvocationType: 'RequestResponse',
      Payload: Buffer.from(JSON.stringify({ messages: [] })),
    });
    await Promise.all(Array.from({ length: warm }, () => client.send(command)));
    return await body(client);
  } finally {
    if (previousPrefix === undefined) delete process.env.FUNCTION_PREFIX;
    else process.env.FUNCTION_PREFIX = previousPrefix;
    client.destroy();
    await offline.stop();
    // serverless-esbuild's build folder (ignored by git); the next run builds again.
    await rm(join(SERVICE_DIR, '.esbuild'), { recursive: true, force: true });
  }
}

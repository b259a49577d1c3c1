/**
 * One Lambda execution environment, as a child process of the tests (see
 * `packaged-function.ts`, which forks it with another Node binary): imports a packaged handler
 * once (the cold start), then runs the invocations sent over the IPC channel one at a time, each
 * with a context whose remaining time counts down from the invocation's deadline. Results go
 * back as Lambda returns them, through `JSON.stringify`; an error as Lambda reports an unhandled
 * one (`errorType`, `errorMessage`, `trace`).
 *
 * Plain JavaScript on purpose: it runs under the Node being tested, with nothing but the bundle.
 *
 * argv: <bundle file> <export name>. Environment: the function's, plus Lambda's reserved variables
 * (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_MEMORY_SIZE…).
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const [file, exportName = 'handler'] = process.argv.slice(2);
const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'function';

/** Lambda's shape of an error that escaped the handler. */
function toLambdaError(error) {
  const thrown = error instanceof Error ? error : new Error(String(error));
  return {
    errorType: thrown.name,
    errorMessage: thrown.message,
    trace: String(thrown.stack ?? '').split('\n'),
  };
}

/** The context Lambda passes: names, ARN, memory, request id, and the time left. */
function createContext(deadline) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '256',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/[$LATEST]${randomUUID().replaceAll('-', '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

const started = performance.now();
let handler;
try {
  const loaded = await import(pathToFileURL(file).href);
  handler = loaded[exportName];
  if (typeof handler !== 'function') {
    throw new TypeError(`${file} exports ${typeof handler} as ${exportName}, not a function`);
  }
} catch (error) {
  process.send({ type: 'init-error', error: toLambdaError(error) });
  process.disconnect();
  process.exitCode = 1;
}

if (handler) {
  // Lambda runs one invocation at a time in an environment: the next waits for this one.
  let queue = Promise.resolve();
  process.on('message', (request) => {
    queue = queue.then(async () => {
      const context = createContext(Date.now() + request.remainingMs);
      const begun = performance.now();
      try {
        const result = await handler(request.event, context);
        const payload = result === undefined ? 'null' : JSON.stringify(result);
        process.send({ type: 'result', id: request.id, payload, ms: performance.now() - begun });
      } catch (error) {
        process.send({ type: 'error', id: request.id, error: toLambdaError(error) });
      }
    });
  });
  process.send({
    type: 'ready',
    node: process.version,
    initMs: performance.now() - started,
  });
}

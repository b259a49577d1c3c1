/**
 * A stand-in for Lambda's Invoke API on localhost, for functions that invoke others through the
 * AWS SDK (the poller, the dispatcher): point their client at it with `AWS_ENDPOINT_URL_LAMBDA`
 * (the SDK's own endpoint setting, so the code runs the path it runs in AWS) or `LAMBDA_ENDPOINT`.
 * `POST /2015-03-31/functions/<name>/invocations` runs the function's handler through
 * `invoke` and answers as Lambda does: 200 with the result, `X-Amz-Function-Error: Unhandled`
 * with `{ errorType, errorMessage, trace }` when the handler threw, 202 at once for an `Event`
 * invoke, 404 `ResourceNotFoundException` for a function it does not serve. Signatures are not
 * checked.
 *
 * Left out: qualifiers and aliases (ignored), throttling, payload size limits, `ClientContext`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InvokeResult } from './packaged-function.js';

/** Runs one invocation of a function. */
export type Invoke = (event: unknown) => Promise<InvokeResult>;

/** One invocation the endpoint served. */
export interface EndpointCall {
  readonly functionName: string;
  readonly invocationType: string;
  readonly event: unknown;
  /** What the function answered, once it has. */
  result?: InvokeResult;
}

/** A running stand-in. */
export interface LambdaEndpoint {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every invocation, in the order they arrived. */
  readonly calls: EndpointCall[];
  close(): Promise<void>;
}

const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/**
 * Starts the stand-in on a free port of 127.0.0.1.
 *
 * @param functions - deployed function name → how to invoke it
 */
export async function startLambdaEndpoint(
  functions: ReadonlyMap<string, Invoke>,
): Promise<LambdaEndpoint> {
  const calls: EndpointCall[] = [];
  const server = createServer((request, response) => {
    serve(request, response, functions, calls).catch((error: Error) => {
      respond(
        response,
        500,
        { 'x-amzn-ErrorType': 'ServiceException' },
        { message: error.message },
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

async function serve(
  request: IncomingMessage,
  response: ServerResponse,
  functions: ReadonlyMap<string, Invoke>,
  calls: EndpointCall[],
): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const match = INVOKE_PATH.exec(url.pathname);
  const body = await readBody(request);
  if (request.method !== 'POST' || !match) {
    respond(
      response,
      404,
      { 'x-amzn-ErrorType': 'UnknownOperationException' },
      {
        message: `${request.method} ${url.pathname} is not an Invoke`,
      },
    );
    return;
  }
  const functionName = functionNameOf(decodeURIComponent(match[1] as string));
  const invoke = functions.get(functionName);
  if (!invoke) {
    respond(
      response,
      404,
      { 'x-amzn-ErrorType': 'ResourceNotFoundException' },
      {
        Type: 'User',
        message: `Function not found: arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
      },
    );
    return;
  }
  const invocationType = String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse');
  const event = body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as unknown);
  const call: EndpointCall = { functionName, invocationType, event };
  calls.push(call);
  if (invocationType === 'DryRun') {
    respond(response, 204, {}, undefined);
    return;
  }
  const running = invoke(event).then((result) => {
    call.result = result;
    return result;
  });
  if (invocationType === 'Event') {
    respond(response, 202, {}, undefined);
    return;
  }
  const result = await running;
  const headers = { 'X-Amz-Executed-Version': '$LATEST' };
  if (result.ok) respond(response, 200, headers, result.payload);
  else respond(response, 200, { ...headers, 'X-Amz-Function-Error': 'Unhandled' }, result.error);
}

/** `name`, `name:qualifier`, a partial or a full ARN → the function's name. */
function functionNameOf(given: string): string {
  const parts = given.split(':');
  const at = parts.indexOf('function');
  if (at >= 0) return parts[at + 1] ?? given;
  return parts[0] ?? given;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function respond(
  response: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: unknown,
): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  response.writeHead(status, { ...headers, 'content-type': 'application/json' });
  response.end(text);
}

/**
 * Producer functions: `POST /tasks/{name}` on an HTTP API, and a direct-invoke handler for
 * applications that call the function with `@aws-sdk/client-lambda`. Both answer 202 with the
 * task id, or 400 (every field error), 404 (unknown task), 413 (too large) or 503 (broker down).
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { type PublishResult, publishCall } from '../producer/publish-call.js';
import type { LambdaRuntime } from './runtime.js';

/** Largest HTTP body accepted, in bytes. */
export const MAX_HTTP_BODY_BYTES = 256 * 1024;

/** Builds the HTTP API handler (route `POST /tasks/{name}`). */
export function createHttpProducerHandler(runtime: LambdaRuntime) {
  return middy(
    async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
      const name = event.pathParameters?.name;
      if (!name) return json(404, { error: 'no task name in the path: POST /tasks/{name}' });
      const text = event.body
        ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8')
        : '';
      if (Buffer.byteLength(text) > MAX_HTTP_BODY_BYTES) {
        return json(413, { error: `body over ${MAX_HTTP_BODY_BYTES} bytes` });
      }
      let input: unknown = {};
      if (text.trim() !== '') {
        try {
          input = JSON.parse(text);
        } catch {
          return json(400, {
            error: 'body is not JSON',
            issues: [{ path: '(body)', message: 'not JSON' }],
          });
        }
      }
      let task: string;
      try {
        task = decodeURIComponent(name);
      } catch {
        // A malformed escape (`%E0%A4`) names no task; decodeURIComponent would throw a URIError.
        return json(404, { error: `unregistered task: ${name}` });
      }
      return toHttp(await publishCall(runtime.registry, runtime.broker(), task, input));
    },
  );
}

/** What a direct invoke of the producer sends: the task name and the call. */
export interface InvokeProducerEvent {
  readonly task: string;
  readonly [key: string]: unknown;
}

/** Builds the direct-invoke handler: `{ task, args?, kwargs?, countdown?, … }` → {@link PublishResult}. */
export function createInvokeProducerHandler(runtime: LambdaRuntime) {
  return middy(async (event: InvokeProducerEvent): Promise<PublishResult> => {
    const { task, ...call } = event ?? {};
    if (typeof task !== 'string' || task === '') {
      return {
        status: 400,
        error: 'invalid call',
        issues: [{ path: 'task', message: 'required: the task name' }],
      };
    }
    return publishCall(runtime.registry, runtime.broker(), task, call);
  });
}

function toHttp(result: PublishResult): APIGatewayProxyStructuredResultV2 {
  const { status, ...body } = result;
  return json(status, body);
}

/** An HTTP API response with a JSON body. */
export function json(statusCode: number, body: unknown): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

/**
 * Producer functions: `POST /tasks/{name}` on an HTTP API, and a direct-invoke handler for
 * applications that call the function with `@aws-sdk/client-lambda`. Both answer 202 with the
 * task id, or 400 (every field error), 404 (unknown task), 413 (too large) or 503 (broker down).
 * The HTTP one also serves `GET /results/{id}` when the app opts in (`results`).
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { InvalidConfigError } from '../core/errors.js';
import type { JsonValue } from '../core/json.js';
import {
  decodeException,
  EXCEPTION_STATES,
  READY_STATES,
  type ResultBackend,
  type ResultMeta,
  type TaskState,
} from '../core/result-backend.js';
import { type PublishResult, publishCall } from '../producer/publish-call.js';
import { type SentAnnouncer, sentAnnouncer } from '../producer/sent-events.js';
import type { LambdaRuntime } from './runtime.js';

/** Largest HTTP body accepted, in bytes. */
export const MAX_HTTP_BODY_BYTES = 256 * 1024;

/**
 * The ids `GET /results/{id}` reads: a uuid as Celery makes them, or an id of the caller's own
 * (`id` of the call, at most 255 characters) in letters, digits and `._:-`. Anything else is
 * refused before Redis is asked, so the route reads `celery-task-meta-<id>` keys and nothing else.
 */
export const RESULT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,255}$/;

/** Options of {@link createHttpProducerHandler}. */
export interface HttpProducerOptions {
  /**
   * Serve `GET /results/{id}` too: the task's state, and its result once ready, read from the
   * runtime's result backend (`custom.celery.producers.http.results`). Off, a GET answers 404.
   * @defaultValue false
   */
  readonly results?: boolean;
}

/** What `GET /results/{id}` answers: Celery's state, and the result only once it is final. */
export interface ResultView {
  readonly id: string;
  readonly state: TaskState;
  /** The return value, or for a failure `{ exc_type, exc_message }` (never the traceback). */
  readonly result?: JsonValue;
}

/**
 * Builds the HTTP API handler: route `POST /tasks/{name}`, and `GET /results/{id}` with `results`.
 *
 * @example
 * export const handler = createHttpProducerHandler(runtime, { results: true });
 */
export function createHttpProducerHandler(
  runtime: LambdaRuntime,
  options: HttpProducerOptions = {},
) {
  const announce = announcerOf(runtime);
  return middy(
    async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
      // The HTTP API sends both routes here; a GET can only be the result route.
      if (event.requestContext?.http?.method === 'GET') {
        if (!options.results) return json(404, { error: 'no such route: results are off' });
        return readResult(runtime, event.pathParameters?.id);
      }
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
      return toHttp(
        await publishCall(runtime.registry, runtime.broker(), task, input, undefined, announce()),
      );
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
  const announce = announcerOf(runtime);
  return middy(async (event: InvokeProducerEvent): Promise<PublishResult> => {
    const { task, ...call } = event ?? {};
    if (typeof task !== 'string' || task === '') {
      return {
        status: 400,
        error: 'invalid call',
        issues: [{ path: 'task', message: 'required: the task name' }],
      };
    }
    return publishCall(runtime.registry, runtime.broker(), task, call, undefined, announce());
  });
}

/**
 * `GET /results/{id}`: 200 with the {@link ResultView} (an id nothing is stored for is `PENDING`,
 * as in Celery), 400 for an id outside {@link RESULT_ID_PATTERN}, 503 when the backend is down.
 *
 * @throws InvalidConfigError when the runtime has no result backend (a deployment error, so the
 * invocation fails and the reason is in the function's log)
 */
async function readResult(
  runtime: LambdaRuntime,
  id: string | undefined,
): Promise<APIGatewayProxyStructuredResultV2> {
  if (id === undefined || !RESULT_ID_PATTERN.test(id)) {
    return json(400, {
      error: 'invalid task id',
      issues: [{ path: 'id', message: `must match ${RESULT_ID_PATTERN.source}` }],
    });
  }
  const backend: Pick<ResultBackend, 'getMeta'> | null = runtime.resultBackend?.() ?? null;
  if (!backend) {
    throw new InvalidConfigError('producer-http', [
      {
        path: 'resultBackend',
        message: 'GET /results/{id} needs a result backend: set RESULT_BACKEND',
      },
    ]);
  }
  let meta: ResultMeta;
  try {
    meta = await backend.getMeta(id);
  } catch (error) {
    // getMeta only connects and reads: whatever fails is the backend being unreachable.
    const reason = error instanceof Error ? error.message : String(error);
    return json(503, { error: `the result backend is unreachable: ${reason}` });
  }
  return json(200, resultView(meta));
}

/** The public view of a stored meta: no traceback, no exception module, no children. */
export function resultView(meta: ResultMeta): ResultView {
  const view = { id: meta.task_id, state: meta.status };
  if (!READY_STATES.has(meta.status)) return view;
  if (!EXCEPTION_STATES.has(meta.status)) return { ...view, result: meta.result };
  const { exc_type, exc_message } = decodeException(meta.result);
  return { ...view, result: { exc_type, exc_message: [...exc_message] } };
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

/**
 * `task-sent` for what a producer publishes, when the runtime has events on; built at the first
 * call, where the runtime reads its configuration, and kept for the environment's life.
 */
function announcerOf(runtime: LambdaRuntime): () => SentAnnouncer {
  let announce: SentAnnouncer | undefined;
  return () => {
    announce ??= sentAnnouncer(runtime.events?.() ?? null);
    return announce;
  };
}

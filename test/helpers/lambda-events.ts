/**
 * Lambda events as AWS sends them, whole, for tests that invoke packaged functions (which see
 * the event as JSON, every field of it): an HTTP API (payload 2.0) request and an EventBridge
 * scheduled event. Each factory takes overrides for what a test cares about.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, ScheduledEvent } from 'aws-lambda';

/** What a test says of an HTTP API request. */
export interface HttpApiRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** The path as requested, `/tasks/ingest.save_event`. */
  readonly path: string;
  /** The route it matched, `POST /tasks/{name}`. @defaultValue `<method> <path>` */
  readonly routeKey?: string;
  readonly pathParameters?: Record<string, string>;
  /** Sent as JSON unless a string. @defaultValue no body */
  readonly body?: unknown;
}

/** An HTTP API (payload format 2.0) event of an unauthenticated request. */
export function httpApiEvent(request: HttpApiRequest): APIGatewayProxyEventV2 {
  const body =
    request.body === undefined
      ? undefined
      : typeof request.body === 'string'
        ? request.body
        : JSON.stringify(request.body);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: request.routeKey ?? `${request.method} ${request.path}`,
    rawPath: request.path,
    rawQueryString: '',
    headers: {
      'content-type': 'application/json',
      host: 'abc123.execute-api.us-east-1.amazonaws.com',
      'user-agent': 'node22-bundles-test',
    },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method: request.method,
        path: request.path,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'node22-bundles-test',
      },
      requestId: randomUUID(),
      routeKey: request.routeKey ?? `${request.method} ${request.path}`,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(request.pathParameters ? { pathParameters: request.pathParameters } : {}),
    ...(body === undefined ? {} : { body }),
    isBase64Encoded: false,
  };
}

/**
 * An EventBridge scheduled event for the rule's tick at `time` (EventBridge sends the minute the
 * rule was due, without milliseconds).
 */
export function scheduledEvent(time: Date, rule = 'schedule'): ScheduledEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: time.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:123456789012:rule/${rule}`],
    detail: {},
  };
}

/** The start of the minute `minutes` minutes before now: a tick of a `rate(1 minute)` rule. */
export function minuteTick(minutesAgo = 0, now = Date.now()): Date {
  return new Date(Math.floor(now / 60_000) * 60_000 - minutesAgo * 60_000);
}

/**
 * The demo's HTTP API: `POST /events` stores the payload under a new id, publishes
 * `ingest.save_event(event_id=…)` and answers 202 at once; `GET /events/{id}` shows its state.
 */
import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { BrokerError } from '../core/errors.js';
import { json } from '../lambda/producer-handlers.js';
import type { LambdaRuntime } from '../lambda/runtime.js';
import { createPublisher } from '../producer/publisher.js';
import type { EventStore } from './event-store.js';
import { saveEvent } from './tasks.js';

/** Builds the handler of both routes. */
export function createEventsApi(runtime: LambdaRuntime, store: EventStore) {
  return middy(
    async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
      const method = event.requestContext?.http?.method ?? 'GET';
      const id = event.pathParameters?.id;
      if (method === 'GET' && id) {
        const stored = await store.get(id);
        return stored ? json(200, stored) : json(404, { error: `no event ${id}` });
      }
      if (method !== 'POST') return json(405, { error: `${method} is not allowed here` });
      let payload: unknown;
      try {
        const text = event.body
          ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8').toString('utf8')
          : '{}';
        payload = JSON.parse(text);
      } catch {
        return json(400, { error: 'body is not JSON' });
      }
      const eventId = await store.create(payload);
      try {
        const taskId = await createPublisher(runtime.broker()).delay(saveEvent, {
          event_id: eventId,
        });
        return json(202, { id: eventId, task_id: taskId });
      } catch (error) {
        if (error instanceof BrokerError) return json(503, { error: error.message, id: eventId });
        throw error;
      }
    },
  );
}

/**
 * One "Lambda container" of the broker-secret test, run as a child process so that each one is a
 * cold start (its own Powertools cache and broker secret): the runtime built from its environment
 * (`BROKER_URL` without credentials, `BROKER_SECRET_ARN`), the relay store the poller builds
 * (`onceStoreAt(BROKER_URL)`), a cron handler with its default lock, and the task's function
 * (its Powertools log lines are part of the container's output). It does what the parent
 * asks over IPC (see secret-container.ts) and stays warm in between.
 */
import { inspect } from 'node:util';
import { onceStoreAt } from '../../src/brokers/once-store-at.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask } from '../../src/core/task.js';
import { toRawDelivery } from '../../src/core/wire.js';
import { createCronHandler } from '../../src/lambda/cron-handler.js';
import { createRuntime } from '../../src/lambda/runtime.js';
import { createTaskHandler } from '../../src/lambda/task-handler.js';
import { fakeContext } from './lambda.js';
import type { ContainerReply, ContainerRequest } from './secret-container.js';

const queue = process.env.SC_TEST_QUEUE as string;
const name = process.env.SC_TEST_TASK as string;
const task = defineTask({ name, queue, cron: '* * * * *' }, () => null);
const registry = createRegistry({ tasks: [task], queues: [{ name: queue }] });
const runtime = createRuntime({ registry });
const taskFunction = createTaskHandler(registry, name);
const relay = onceStoreAt(process.env.BROKER_URL as string);
const cron = createCronHandler(runtime, name);

async function perform(request: ContainerRequest): Promise<unknown> {
  switch (request.op) {
    case 'publish':
      await runtime.broker().publish([task.createMessage()]);
      return null;
    case 'receive': {
      const deliveries = await runtime.broker().receive(queue, { max: 10, waitMs: 500 });
      // Run as the task function runs them: its log lines join the output searched for passwords.
      const messages = deliveries.flatMap((delivery) =>
        delivery.result.ok ? [toRawDelivery(delivery.result.message)] : [],
      );
      if (messages.length > 0) await taskFunction({ messages }, fakeContext());
      await runtime
        .broker()
        .settle(deliveries.map((delivery) => ({ delivery, settlement: { kind: 'done' } })));
      return deliveries.length;
    }
    case 'claim':
      return relay.claim(request.key, 60);
    case 'cron':
      return cron({ time: request.time }, fakeContext());
    case 'close':
      await runtime.broker().close();
      await relay.close();
      process.disconnect?.();
      return null;
  }
}

process.on('message', (request: ContainerRequest) => {
  perform(request).then(
    (value) => process.send?.({ id: request.id, ok: true, value } satisfies ContainerReply),
    (error: unknown) =>
      process.send?.({
        id: request.id,
        ok: false,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        // What a Lambda would log for the failure: the error with its causes and fields.
        detail: inspect(error, { depth: 10 }),
      } satisfies ContainerReply),
  );
});

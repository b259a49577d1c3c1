/**
 * Head of line, for bench/lambda-path.ts: in the local worker (`runWorker`, the loop the Lambda
 * poller runs too) at concurrency 10, a 5 s task, then 3 quick ones 0.5 s later. A loop that waits
 * for a whole batch before taking more holds the quick ones behind the slow one.
 */
import { createBroker } from '../../src/brokers/create-broker.js';
import { createRegistry } from '../../src/core/registry.js';
import { defineTask, type Task } from '../../src/core/task.js';
import { runLocalWorker } from '../../src/worker/local-worker.js';
import { cleanQueue, nowMs, REDIS_URL, sleep, waitUntil } from '../harness.js';

/** The slow task's run time, ms. */
export const LONG_TASK_MS = 5_000;
/** Quick tasks published after it, together. */
export const QUICK_TASKS = 3;
/** How long after the slow one they are published, ms. */
export const QUICK_AFTER_MS = 500;
/** The local worker's concurrency (its default). */
export const HEAD_OF_LINE_CONCURRENCY = 10;

/** One head-of-line run: the quick tasks' worst delay (start − publish), ms. */
export async function headOfLine(run: number): Promise<number> {
  const queue = `bench.lambda-path.head-of-line.${run}`;
  const delays: number[] = [];
  let longDone = false;
  const long = defineTask({ name: 'bench.long', queue, maxRetries: 0 }, async () => {
    await sleep(LONG_TASK_MS);
    longDone = true;
  });
  const quick = defineTask({ name: 'bench.quick', queue, maxRetries: 0 }, (kwargs) => {
    // Its end minus its publish, minus its own run time (none): its start after its publish.
    delays.push(nowMs() - (kwargs.sent as number));
  });
  const tasks: Task[] = [long, quick];
  const registry = createRegistry({ tasks, queues: [{ name: queue }] });
  const broker = createBroker(REDIS_URL, { queues: registry.queues });
  const controller = new AbortController();
  try {
    await broker.stats(queue);
    const worker = runLocalWorker(broker, registry, {
      queues: [queue],
      concurrency: HEAD_OF_LINE_CONCURRENCY,
      signal: controller.signal,
    });
    await sleep(200);
    await broker.publish([long.createMessage()]);
    await sleep(QUICK_AFTER_MS);
    const sent = nowMs();
    await broker.publish(
      Array.from({ length: QUICK_TASKS }, () => quick.createMessage({ kwargs: { sent } })),
    );
    const wait = LONG_TASK_MS * 3;
    await waitUntil(async () => delays.length === QUICK_TASKS && longDone, wait, 'the tasks');
    controller.abort();
    await worker;
    return Math.max(...delays);
  } finally {
    controller.abort();
    await broker.close();
    await cleanQueue('redis', queue);
  }
}

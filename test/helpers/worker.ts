/**
 * Our local worker for integration tests: started in the background on given queues, stopped by
 * the function it returns (which aborts it and waits until what it held is settled).
 */
import type { Broker } from '../../src/brokers/broker.js';
import type { Registry } from '../../src/core/registry.js';
import { runLocalWorker, type WorkerOptions } from '../../src/worker/local-worker.js';

/** Starts {@link runLocalWorker}; the result stops it. `waitMs` defaults to 200 ms. */
export function startLocalWorker(
  broker: Broker,
  registry: Registry,
  options: Omit<WorkerOptions, 'signal'>,
): () => Promise<void> {
  const controller = new AbortController();
  const running = runLocalWorker(broker, registry, {
    waitMs: 200,
    ...options,
    signal: controller.signal,
  });
  return () => {
    controller.abort();
    return running;
  };
}

/**
 * Dispatch metrics of the poller and the Amazon MQ dispatcher, in CloudWatch EMF through the same
 * sink as the task metrics: per task and queue, the invokes made, those that failed or were
 * throttled, the messages per invoke, and the invokes in flight at the busiest moment. They are
 * taken around the executor, so the flow that schedules invokes needs no hook:
 *
 * @example
 * const executor = instrumentExecutor(lambdaExecutor({ functionName, batchSize: 10 }), metrics);
 * // … run the worker with `executor` …
 * executor.flush(); // once per invocation, before answering
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { TaskMessage } from '../core/message.js';
import { isThrottled, type TaskExecutor } from '../worker/executor.js';
import type { TaskMetricsSink } from './metrics.js';

/** Metric names of the dispatch side. */
export const DISPATCH_METRICS = {
  invokes: 'Invokes',
  invokeFailures: 'InvokeFailures',
  throttles: 'InvokeThrottles',
  messagesPerInvoke: 'MessagesPerInvoke',
  inFlight: 'InFlightInvokes',
} as const;

/** EMF holds at most 100 values per metric in one object: a longer series is published early. */
const MAX_VALUES = 100;

/** An executor whose invokes are counted; `flush()` publishes what was counted since the last. */
export interface InstrumentedExecutor extends TaskExecutor {
  /** Publishes one EMF object per task and queue seen since the last flush. */
  flush(): void;
}

interface Tally {
  invokes: number;
  failures: number;
  throttles: number;
  sizes: number[];
  peakInFlight: number;
}

/**
 * Wraps `executor` so each `execute` call counts as one invoke of its task: a
 * {@link ThrottledError} counts a throttle, any other error an invoke failure; both are re-thrown
 * unchanged, so the flow settles exactly as without metrics.
 */
export function instrumentExecutor(
  executor: TaskExecutor,
  metrics: TaskMetricsSink,
): InstrumentedExecutor {
  const tallies = new Map<string, Tally>();
  let inFlight = 0;

  const publish = (key: string, tally: Tally) => {
    const [task, queue] = JSON.parse(key) as [string, string];
    metrics.addDimensions({ task, queue });
    metrics.addMetric(DISPATCH_METRICS.invokes, MetricUnit.Count, tally.invokes);
    if (tally.failures > 0) {
      metrics.addMetric(DISPATCH_METRICS.invokeFailures, MetricUnit.Count, tally.failures);
    }
    if (tally.throttles > 0) {
      metrics.addMetric(DISPATCH_METRICS.throttles, MetricUnit.Count, tally.throttles);
    }
    for (const size of tally.sizes) {
      metrics.addMetric(DISPATCH_METRICS.messagesPerInvoke, MetricUnit.Count, size);
    }
    metrics.addMetric(DISPATCH_METRICS.inFlight, MetricUnit.Count, tally.peakInFlight);
    metrics.publishStoredMetrics();
  };

  const tallyOf = (task: string, messages: readonly TaskMessage[]) => {
    const key = JSON.stringify([task, messages[0]?.routingKey ?? 'unknown']);
    let tally = tallies.get(key);
    if (!tally) {
      tally = { invokes: 0, failures: 0, throttles: 0, sizes: [], peakInFlight: 0 };
      tallies.set(key, tally);
    }
    return { key, tally };
  };

  return {
    ...(executor.batchSize === undefined ? {} : { batchSize: executor.batchSize }),
    async execute(task, messages) {
      const { key, tally } = tallyOf(task, messages);
      inFlight++;
      tally.invokes++;
      tally.sizes.push(messages.length);
      tally.peakInFlight = Math.max(tally.peakInFlight, inFlight);
      try {
        return await executor.execute(task, messages);
      } catch (error) {
        if (error instanceof Error && isThrottled(error)) tally.throttles++;
        else tally.failures++;
        throw error;
      } finally {
        inFlight--;
        if (tally.sizes.length >= MAX_VALUES) {
          publish(key, tally);
          tallies.delete(key);
        }
      }
    },
    flush() {
      for (const [key, tally] of tallies) publish(key, tally);
      tallies.clear();
    },
  };
}

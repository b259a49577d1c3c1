/**
 * Task metrics in CloudWatch Embedded Metric Format, through Powertools Metrics: per task and
 * queue, the count of each outcome (`TaskSucceeded`, `TaskFailed`, `TaskRetried`,
 * `TaskIgnored`), the run's duration and the queue latency (start − eta, else − sent), and
 * `TaskDeadLettered` per reason. Namespace and service come from `POWERTOOLS_METRICS_NAMESPACE`
 * and `POWERTOOLS_SERVICE_NAME` (params `metricsNamespace`, `serviceName` in `serverless.yml`).
 *
 * One EMF object per (task, queue) and per (task, queue, reason) an invocation saw: a dimension
 * set applies to a whole object, and a batch may mix queues. Every function (task functions, the
 * poller, the Amazon MQ dispatcher) also counts its cold starts (`ColdStart`, Powertools').
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AttemptRecord } from '../worker/attempt-log.js';
import { DEFAULT_SERVICE_NAME } from './logging.js';

/** Metric names, one per thing counted or timed. */
export const TASK_METRICS = {
  succeeded: 'TaskSucceeded',
  failed: 'TaskFailed',
  retried: 'TaskRetried',
  ignored: 'TaskIgnored',
  deadLettered: 'TaskDeadLettered',
  duration: 'TaskDuration',
  queueLatency: 'QueueLatency',
} as const;

/** Our namespace when `POWERTOOLS_METRICS_NAMESPACE` is not set. */
export const DEFAULT_METRICS_NAMESPACE = 'ServerlessCelery';

/** The slice of Powertools `Metrics` the task metrics use. */
export interface TaskMetricsSink {
  addDimensions(dimensions: Record<string, string>): void;
  addMetric(name: string, unit: Unit, value: number): void;
  publishStoredMetrics(): void;
  /**
   * Powertools' `ColdStart` metric (dimensions `service`, `function_name`): 1 at an execution
   * environment's first invocation, nothing at later ones.
   */
  captureColdStartMetric?(functionName?: string): void;
}

/**
 * The metrics of a function by default: Powertools Metrics in Lambda, none elsewhere
 * (serverless-offline, `dev`'s own poller and dispatcher, a handler called in a test or a script,
 * whose output would fill with EMF).
 */
export function metricsInLambda(env: NodeJS.ProcessEnv = process.env): TaskMetricsSink | null {
  return env.AWS_LAMBDA_FUNCTION_NAME && env.IS_OFFLINE !== 'true' ? createMetrics(env) : null;
}

/** A Powertools Metrics with our defaults for namespace and service. */
export function createMetrics(env: NodeJS.ProcessEnv = process.env): Metrics {
  return new Metrics({
    namespace: env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE,
    serviceName: env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME,
  });
}

/**
 * Emits the metrics of an invocation's attempts, grouped by task and queue (and by reason for
 * dead letters), one EMF object each. Messages that never ran (not due) count nowhere.
 */
export function publishAttemptMetrics(
  metrics: TaskMetricsSink,
  records: readonly AttemptRecord[],
): void {
  const groups = new Map<string, AttemptRecord[]>();
  for (const record of records) {
    if (record.outcome === 'not-due') continue;
    const key = JSON.stringify([record.task ?? 'unknown', record.queue]);
    groups.set(key, [...(groups.get(key) ?? []), record]);
  }
  for (const [key, group] of groups) {
    const [task, queue] = JSON.parse(key) as [string, string];
    publish(metrics, { task, queue }, outcomeMetrics(group));
    const reasons = new Set(group.flatMap((r) => (r.reason === null ? [] : [r.reason])));
    for (const reason of reasons) {
      const n = group.filter((r) => r.reason === reason).length;
      publish(metrics, { task, queue, reason }, [[TASK_METRICS.deadLettered, MetricUnit.Count, n]]);
    }
  }
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];
type Point = readonly [name: string, unit: Unit, value: number];

/** The counts, durations and latencies of one (task, queue) group. */
function outcomeMetrics(group: readonly AttemptRecord[]): Point[] {
  const points: Point[] = [];
  const count = (name: string, matches: (record: AttemptRecord) => boolean) => {
    const n = group.filter(matches).length;
    if (n > 0) points.push([name, MetricUnit.Count, n]);
  };
  count(TASK_METRICS.succeeded, (r) => r.outcome === 'succeeded' || r.outcome === 'duplicate');
  // Failed: the task ran (or was refused its arguments) and gave up; other dead letters never ran.
  count(TASK_METRICS.failed, (r) => r.outcome === 'dead' && r.error_type !== null);
  count(TASK_METRICS.retried, (r) => r.outcome === 'retry');
  count(TASK_METRICS.ignored, (r) => r.outcome === 'ignored');
  for (const record of group) {
    // A run faster than the clock's millisecond is a duration of 0, not a missing one.
    if (record.duration_ms !== null) {
      points.push([TASK_METRICS.duration, MetricUnit.Milliseconds, record.duration_ms]);
    }
    if (record.delay_ms !== null) {
      // A clock ahead of the producer's would give a negative wait; none is the truth.
      points.push([
        TASK_METRICS.queueLatency,
        MetricUnit.Milliseconds,
        Math.max(0, record.delay_ms),
      ]);
    }
  }
  return points;
}

/** One EMF object: `points` under `dimensions`; nothing when there are none (no empty publish). */
function publish(
  metrics: TaskMetricsSink,
  dimensions: Record<string, string>,
  points: readonly Point[],
): void {
  if (points.length === 0) return;
  metrics.addDimensions(dimensions);
  for (const [name, unit, value] of points) metrics.addMetric(name, unit, value);
  metrics.publishStoredMetrics();
}

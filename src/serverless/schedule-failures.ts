/**
 * Where a scheduled invocation that failed goes. EventBridge invokes the cron triggers and the
 * poller asynchronously: Lambda retries a failed one (the cron triggers twice, the poller never)
 * and then drops it, so a tick that failed would be visible only in the logs. With
 * `custom.celery.scheduleFailureQueue` (the default) the stack gets an SQS queue and those
 * functions an on-failure destination to it: Lambda sends it a record of the event, the error and
 * the attempts (also for an event that expired before it ran), kept 14 days.
 *
 * A function destination, not the rule's DeadLetterConfig: a rule's dead-letter queue receives
 * only the events EventBridge could not deliver (a missing permission, a throttled Lambda
 * service), never a function error. `destinations.onFailure` with `{ type, arn }` is the same in
 * osls and Serverless Framework v4. The roles of those functions may `sqs:SendMessage` to the
 * queue (celery-roles.ts): Lambda sends with the function's role.
 */
import type { CeleryConfig } from './celery-config.js';
import type { CfnResource, FunctionDefinition } from './serverless-types.js';

/** The logical id of the queue. */
export const SCHEDULE_FAILURE_QUEUE_ID = 'CeleryScheduleFailureQueue';

/** SQS keeps a message 14 days at most. */
const RETENTION_S = 14 * 24 * 3600;

/** The queue's ARN, as CloudFormation resolves it. */
export const SCHEDULE_FAILURE_QUEUE_ARN = {
  'Fn::GetAtt': [SCHEDULE_FAILURE_QUEUE_ID, 'Arn'],
} as const;

/** The `destinations` of a function EventBridge invokes, or nothing when the queue is off. */
export function scheduleFailureDestination(
  config: CeleryConfig,
): { destinations: { onFailure: { type: 'sqs'; arn: unknown } } } | Record<string, never> {
  return config.scheduleFailureQueue
    ? { destinations: { onFailure: { type: 'sqs', arn: SCHEDULE_FAILURE_QUEUE_ARN } } }
    : {};
}

/** Whether any of `functions` has the queue as its on-failure destination. */
export function sendsScheduleFailures(functions: readonly FunctionDefinition[]): boolean {
  const queue = JSON.stringify(SCHEDULE_FAILURE_QUEUE_ARN);
  return functions.some(
    (fn) =>
      JSON.stringify((fn.destinations as { onFailure?: { arn?: unknown } })?.onFailure?.arn) ===
      queue,
  );
}

/** The queue, and its URL and ARN as stack outputs (where to read failed ticks). */
export function scheduleFailureResources(): {
  readonly resources: Record<string, CfnResource>;
  readonly outputs: Record<string, unknown>;
} {
  return {
    resources: {
      [SCHEDULE_FAILURE_QUEUE_ID]: {
        Type: 'AWS::SQS::Queue',
        Properties: { MessageRetentionPeriod: RETENTION_S, SqsManagedSseEnabled: true },
      },
    },
    outputs: {
      CeleryScheduleFailureQueueUrl: {
        Description: 'Failed or expired cron ticks and poller runs (Lambda on-failure records)',
        Value: { Ref: SCHEDULE_FAILURE_QUEUE_ID },
      },
      CeleryScheduleFailureQueueArn: {
        Description: 'The ARN of CeleryScheduleFailureQueueUrl',
        Value: SCHEDULE_FAILURE_QUEUE_ARN,
      },
    },
  };
}

import { describe, expect, it } from 'vitest';
import { createRegistry, type RegistryInput } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import {
  type CeleryConfigInput,
  parseCeleryConfig,
} from '../../../src/serverless/celery-config.js';
import { type CeleryPlan, planFunctions } from '../../../src/serverless/plan-functions.js';
import {
  SCHEDULE_FAILURE_QUEUE_ARN,
  sendsScheduleFailures,
} from '../../../src/serverless/schedule-failures.js';

const SEND = defineTask({ name: 'reports.send', queue: 'reports' }, async () => null);
const PURGE = defineTask(
  { name: 'reports.purge', queue: 'reports', cron: '0 3 * * *' },
  async () => null,
);
const MQ = { arn: 'arn:mq', secretArn: 'arn:secret' };

function plan(config: Partial<CeleryConfigInput>, tasks: RegistryInput['tasks']): CeleryPlan {
  const registry = createRegistry({ tasks, queues: [{ name: 'reports' }] });
  return planFunctions(registry, parseCeleryConfig({ app: './app.ts', ...config }), {
    service: 'reports',
    stage: 'dev',
  });
}

/** The keys of the functions whose on-failure destination is the queue. */
function sending(planned: CeleryPlan): string[] {
  return planned.functions
    .filter((fn) => sendsScheduleFailures([fn.definition]))
    .map((fn) => fn.key);
}

describe('the schedule failure queue', () => {
  it('is the on-failure destination of the functions EventBridge invokes, and only theirs', () => {
    // Act
    const planned = plan({}, [SEND, PURGE]);

    // Assess
    expect(sending(planned)).toEqual(['cron-reports-purge', 'poller']);
    expect(planned.functions.find((fn) => fn.key === 'poller')?.definition.destinations).toEqual({
      onFailure: { type: 'sqs', arn: SCHEDULE_FAILURE_QUEUE_ARN },
    });
  });

  it('has no sender on RabbitMQ without a cron task: the dispatcher is invoked by its event source', () => {
    // Act
    const planned = plan({ broker: { kind: 'rabbitmq', amazonMq: MQ } }, [SEND]);

    // Assess
    expect(sending(planned)).toEqual([]);
    expect(sendsScheduleFailures(planned.functions.map((fn) => fn.definition))).toBe(false);
  });

  it.each([false, 'false'] as const)(
    'is left out with scheduleFailureQueue: %j',
    (scheduleFailureQueue) => {
      expect(sending(plan({ scheduleFailureQueue }, [SEND, PURGE]))).toEqual([]);
    },
  );
});

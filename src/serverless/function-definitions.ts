/**
 * The definition of each kind of generated function: its description, role, timeout, events and
 * environment, then the overrides of `custom.celery` on top (celery-config.ts says in which
 * order). The numbers here are the library's contracts: the poller's hard stop, its visibility
 * timeout, the dispatcher's wait; plan-functions.ts checks the tasks against them. Each kind
 * also gets the broker's VPC when it connects to the broker (function-vpc.ts), and the functions
 * EventBridge invokes their on-failure destination (schedule-failures.ts).
 */
import { InvalidConfigError } from '../core/errors.js';
import type { Schedule } from '../core/schedule.js';
import type { Task } from '../core/task.js';
import { POLLER_INTERVAL_MS } from '../lambda/drain-relay.js';
import { taskFunctionKey } from '../lambda/function-names.js';
import { toScheduleExpression } from '../lambda/schedule-expression.js';
import { eventSourceVirtualHost } from './broker-checks.js';
import type { CeleryConfig, FunctionOverrides } from './celery-config.js';
import { vpcOf } from './function-vpc.js';
import { scheduleFailureDestination } from './schedule-failures.js';
import type { FunctionDefinition } from './serverless-types.js';

/** The kinds of generated function; each has its own handler factory. */
export type FunctionKind =
  | 'task'
  | 'cron'
  | 'poller'
  | 'dispatcher'
  | 'producer-http'
  | 'producer-invoke';

/** Logical ids of the roles the plugin creates (celery-roles.ts). */
export const ROLE_IDS = {
  /** Tasks, producers, cron triggers: logs only. Your own functions may use it too. */
  function: 'CeleryFunctionRole',
  /** The poller: logs, and invoking the task functions. */
  poller: 'CeleryPollerRole',
  /** The dispatcher: logs, invoking the task functions, and the Amazon MQ event source. */
  dispatcher: 'CeleryDispatcherRole',
} as const;

/** One generated function. */
export interface PlannedFunction {
  /** Its key under `functions` (`task-ingest-save_event`). */
  readonly key: string;
  readonly kind: FunctionKind;
  /** The task it runs (task) or publishes (cron). */
  readonly task?: string;
  /** Options its handler factory is called with (`{ results: true }`), as JSON. */
  readonly handlerOptions?: Readonly<Record<string, boolean>>;
  /** Its definition for `serverless.service.functions`, but for `handler` (the plugin's). */
  readonly definition: FunctionDefinition;
}

/** PollerOptions.stopTakingAtMs's default (poller-handler.ts): it stops this long before its timeout. */
export const POLLER_STOP_TAKING_S = 60;
/** Lambda's most: how long one poller can bridge lost ticks (see drain-relay.ts). */
const POLLER_TIMEOUT_S = 900;
/** A held message comes back this long after its poller's timeout (BROKER_VISIBILITY_TIMEOUT). */
const VISIBILITY_MARGIN_S = 60;
/** The dispatcher waits for the task functions it invokes, then settles the batch. */
const DISPATCHER_TIMEOUT_S = 90;
/** A task function outlives its task's hard time limit by this much, to report the outcome. */
export const TASK_TIMEOUT_MARGIN_S = 15;
/** Producers and cron triggers publish one message. */
const PUBLISHER_TIMEOUT_S = 10;

/** The function key of the cron trigger of `task` (`ingest.cleanup` → `cron-ingest-cleanup`). */
export function cronFunctionKey(task: string): string {
  return `cron-${taskFunctionKey(task).slice('task-'.length)}`;
}

/** The function that runs `task`. */
export function taskFunction(task: Task, config: CeleryConfig): PlannedFunction {
  const { timeLimit } = task.options;
  const { cron: _trigger, ...overrides } = config.tasks[task.name] ?? {};
  return {
    key: taskFunctionKey(task.name),
    kind: 'task',
    task: task.name,
    definition: merge(
      config.defaults,
      {
        description: `Runs ${task.name}${timeLimit === undefined ? '' : ` (timeLimit ${timeLimit} s)`}`,
        role: ROLE_IDS.function,
        ...(timeLimit === undefined
          ? {}
          : { timeout: Math.ceil(timeLimit) + TASK_TIMEOUT_MARGIN_S }),
        ...vpcOf(config, 'task', task),
        events: [],
      },
      overrides,
    ),
  };
}

/**
 * The cron trigger of `task`: an EventBridge rule at the translation of its schedule.
 *
 * @throws InvalidConfigError naming the task when EventBridge cannot express its cron
 */
export function cronFunction(
  task: Task,
  schedule: Schedule,
  config: CeleryConfig,
): PlannedFunction {
  let rate: string;
  try {
    rate = toScheduleExpression(schedule);
  } catch (error) {
    if (!(error instanceof InvalidConfigError) || schedule.kind !== 'cron') throw error;
    throw new InvalidConfigError('serverless-celery', [
      {
        path: `task ${task.name}`,
        message:
          `cron ${JSON.stringify(schedule.expression)} cannot run on EventBridge: ` +
          error.issues.map((issue) => issue.message).join('; '),
      },
    ]);
  }
  const { lockUrl, ...cronOverrides } = config.cron;
  const written = schedule.kind === 'cron' ? schedule.expression : rate;
  const definition = merge(
    config.defaults,
    {
      description: `Publishes ${task.name} on its schedule (${written})`,
      role: ROLE_IDS.function,
      timeout: PUBLISHER_TIMEOUT_S,
      ...vpcOf(config, 'cron'),
      ...scheduleFailureDestination(config),
      // EventBridge rule, not EventBridge Scheduler: Scheduler would invoke with a role of its own
      // (Serverless v4 has no roleArn); a rule invokes through the function's resource policy.
      events: [{ schedule: { rate: [rate], method: 'eventBus' } }],
    },
    cronOverrides,
    config.tasks[task.name]?.cron,
  );
  if (lockUrl) definition.environment = { CRON_LOCK_URL: lockUrl, ...definition.environment };
  return { key: cronFunctionKey(task.name), kind: 'cron', task: task.name, definition };
}

/** The Redis poller: a scheduled drain that invokes the task functions. */
export function pollerFunction(config: CeleryConfig): PlannedFunction {
  const { scheduleEnabled, ...overrides } = config.poller;
  const definition = merge(
    config.defaults,
    {
      description: 'Drains the Redis queues and invokes the task functions',
      role: ROLE_IDS.poller,
      timeout: POLLER_TIMEOUT_S,
      // A tick older than one interval is superseded by the next one, and retrying a failed
      // poller would only start a second one beside the next tick's.
      maximumEventAge: POLLER_INTERVAL_MS / 1000,
      maximumRetryAttempts: 0,
      ...vpcOf(config, 'poller'),
      ...scheduleFailureDestination(config),
      events: [
        {
          schedule: {
            rate: [`rate(${POLLER_INTERVAL_MS / 60_000} minute)`],
            method: 'eventBus',
            enabled: scheduleEnabled,
          },
        },
      ],
    },
    overrides,
  );
  // A poller holds a message no longer than it runs: what a dead one held comes back a minute
  // after its timeout (brokerConfigFromEnv reads this when BROKER_URL sets no visibility_timeout).
  const timeout = (definition.timeout as number | undefined) ?? POLLER_TIMEOUT_S;
  definition.environment = {
    BROKER_VISIBILITY_TIMEOUT: String(timeout + VISIBILITY_MARGIN_S),
    ...definition.environment,
  };
  return { key: 'poller', kind: 'poller', definition };
}

/** The Amazon MQ dispatcher, fed by one event source per queue of `queues` (when it has an ARN). */
export function dispatcherFunction(
  config: CeleryConfig,
  queues: readonly string[],
): PlannedFunction {
  const amazonMq = config.broker.kind === 'rabbitmq' ? config.broker.amazonMq : undefined;
  const virtualHost = eventSourceVirtualHost(config.broker);
  const events =
    amazonMq && amazonMq.arn !== ''
      ? queues.map((queue) => ({
          rabbitmq: {
            arn: amazonMq.arn,
            basicAuthArn: amazonMq.secretArn,
            queue,
            batchSize: amazonMq.batchSize,
            maximumBatchingWindow: amazonMq.maximumBatchingWindow,
            ...(virtualHost === undefined ? {} : { virtualHost }),
          },
        }))
      : [];
  return {
    key: 'dispatcher',
    kind: 'dispatcher',
    definition: merge(
      config.defaults,
      {
        description: 'Amazon MQ for RabbitMQ event source; invokes the task functions',
        role: ROLE_IDS.dispatcher,
        timeout: DISPATCHER_TIMEOUT_S,
        ...vpcOf(config, 'dispatcher'),
        events,
      },
      config.dispatcher,
    ),
  };
}

/** The path of the result route, `GET` on the HTTP producer when `producers.http.results`. */
export const RESULTS_PATH = '/results/{id}';

/** The producers that are enabled: `POST /tasks/{name}` (and `GET /results/{id}`), direct invoke. */
export function producerFunctions(config: CeleryConfig): PlannedFunction[] {
  const { enabled: httpEnabled, path, auth, results, ...httpOverrides } = config.producers.http;
  const { enabled: invokeEnabled, ...invokeOverrides } = config.producers.invoke;
  const base = { role: ROLE_IDS.function, timeout: PUBLISHER_TIMEOUT_S };
  const vpc = vpcOf(config, 'producer-http');
  const planned: PlannedFunction[] = [];
  if (httpEnabled) {
    const authorizer = auth === 'iam' ? { authorizer: { type: 'aws_iam' } } : {};
    const events = [{ httpApi: { method: 'POST', path, ...authorizer } }];
    if (results) events.push({ httpApi: { method: 'GET', path: RESULTS_PATH, ...authorizer } });
    planned.push({
      key: 'producer-http',
      kind: 'producer-http',
      ...(results ? { handlerOptions: { results: true } } : {}),
      definition: merge(
        config.defaults,
        {
          ...base,
          ...vpc,
          description: `POST ${path} publishes a task${results ? `; GET ${RESULTS_PATH} reads its result` : ''}`,
          events,
        },
        httpOverrides,
      ),
    });
  }
  if (invokeEnabled) {
    planned.push({
      key: 'producer-invoke',
      kind: 'producer-invoke',
      definition: merge(
        config.defaults,
        {
          ...base,
          ...vpc,
          description: 'Direct invoke { task, args, kwargs } publishes a task',
          events: [],
        },
        invokeOverrides,
      ),
    });
  }
  return planned;
}

/**
 * `defaults`, then the plugin's definition of the function, then each layer of overrides (later
 * wins); environments merge key by key. The plugin's own settings (the poller's 900 s, a task's
 * timeLimit + 15 s) thus win over `defaults`, which fills in what they leave to the provider.
 */
function merge(
  defaults: Partial<FunctionOverrides>,
  base: FunctionDefinition,
  ...layers: (Partial<FunctionOverrides> | undefined)[]
): FunctionDefinition {
  const merged: FunctionDefinition = {};
  for (const layer of [defaults, base, ...layers]) {
    for (const [key, value] of Object.entries(layer ?? {})) {
      if (value === undefined) continue;
      merged[key] =
        key === 'environment'
          ? { ...merged.environment, ...(value as Record<string, unknown>) }
          : value;
    }
  }
  return merged;
}

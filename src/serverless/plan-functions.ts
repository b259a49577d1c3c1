/**
 * From a registry and `custom.celery` to the functions of the service: one per task, one cron
 * trigger per periodic task, the poller (Redis) or the Amazon MQ dispatcher (RabbitMQ), and the
 * producers. A pure function over plain data: no framework, no file system.
 *
 * The names are the ones the poller and dispatcher compute at run time (`FUNCTION_PREFIX` +
 * `taskFunctionKey`), so the plugin sets each function's `name` and `FUNCTION_PREFIX`
 * itself. What cannot be deployed is refused here, every problem at once: a function name over
 * Lambda's 64 characters, a cron EventBridge cannot express, an override of a task the registry
 * does not have, a task timeout the poller or dispatcher would not wait for.
 */
import { type FieldIssue, InvalidConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { brokerSecretArn } from './broker-checks.js';
import { type CeleryConfig, CONFIG_PATH } from './celery-config.js';
import {
  cronFunction,
  dispatcherFunction,
  type PlannedFunction,
  POLLER_STOP_TAKING_S,
  pollerFunction,
  producerFunctions,
  TASK_TIMEOUT_MARGIN_S,
  taskFunction,
} from './function-definitions.js';

/** Everything the plugin adds to the service. */
export interface CeleryPlan {
  /** The prefix of every generated function's name: `custom.celery.functionPrefix`, else {@link frameworkPrefix}. */
  readonly prefix: string;
  /** `<service>-<stage>-`: the framework's prefix, which your own functions' names keep. */
  readonly frameworkPrefix: string;
  readonly functions: readonly PlannedFunction[];
  /** Names of the task functions: the only functions the poller and dispatcher may invoke. */
  readonly taskFunctionNames: readonly string[];
  /** Variables every function of the service gets (`provider.environment`). */
  readonly environment: Readonly<Record<string, unknown>>;
  /** `BROKER_SECRET_ARN`: the secret the broker's credentials are read from, if any. */
  readonly brokerSecretArn?: unknown;
}

/** What the plan needs from the service. */
export interface PlanContext {
  readonly service: string;
  readonly stage: string;
  /** `provider.timeout`, which functions without their own inherit. */
  readonly providerTimeout?: number | undefined;
  /** `provider.logRetentionInDays`: the generated functions keep it unless told otherwise. */
  readonly providerLogRetentionInDays?: unknown;
}

/** Lambda's limit on a function name. */
export const MAX_FUNCTION_NAME_LENGTH = 64;
/** The framework's timeout for a function that sets none (osls and Serverless v4). */
const FRAMEWORK_TIMEOUT_S = 6;
/** Days CloudWatch keeps a generated function's logs when neither custom.celery nor the provider says. */
export const DEFAULT_LOG_RETENTION_DAYS = 30;

/**
 * Plans the functions of an app.
 *
 * @throws InvalidConfigError listing every problem, each naming the task or the field
 */
export function planFunctions(
  registry: Registry,
  written: CeleryConfig,
  context: PlanContext,
): CeleryPlan {
  const issues: FieldIssue[] = [];
  const config = withLogRetention(written, context);
  const frameworkPrefix = `${context.service}-${context.stage}-`;
  const prefix = config.functionPrefix ?? frameworkPrefix;
  const functions: PlannedFunction[] = [];
  const owners = new Map<string, string>();
  const add = (planned: PlannedFunction, owner: string) => {
    const name = `${prefix}${planned.key}`;
    const taken = owners.get(planned.key);
    if (taken)
      issues.push({ path: owner, message: `function ${planned.key} is taken by ${taken}` });
    if (name.length > MAX_FUNCTION_NAME_LENGTH) {
      const room = MAX_FUNCTION_NAME_LENGTH - planned.key.length;
      issues.push({
        path: owner,
        message:
          `function name ${name} is ${name.length} characters, Lambda allows ` +
          `${MAX_FUNCTION_NAME_LENGTH}: ` +
          (room > 0
            ? `set ${CONFIG_PATH}.functionPrefix to at most ${room} characters (it is ` +
              `${JSON.stringify(prefix)}, e.g. ${JSON.stringify(shortPrefix(context, room))}), ` +
              'or shorten the task name'
            : 'shorten the task name'),
      });
    }
    owners.set(planned.key, owner);
    functions.push({ ...planned, definition: { name, ...planned.definition } });
  };

  checkTaskOverrides(registry, config, issues);
  const drainer =
    config.broker.kind === 'redis'
      ? pollerFunction(config)
      : dispatcherFunction(config, amazonMqQueues(registry, config, issues));
  const waitS = drainer.kind === 'poller' ? POLLER_STOP_TAKING_S : timeoutOf(drainer, context);

  for (const task of registry.tasks) {
    const planned = taskFunction(task, config);
    const timeout = timeoutOf(planned, context);
    if (timeout >= waitS) {
      const path =
        config.tasks[task.name]?.timeout !== undefined
          ? `${CONFIG_PATH}.tasks.${task.name}.timeout`
          : task.options.timeLimit === undefined && config.defaults.timeout !== undefined
            ? `${CONFIG_PATH}.defaults.timeout`
            : `task ${task.name}`;
      issues.push({
        path,
        message:
          `the function's timeout of ${timeout} s must be under ` +
          (drainer.kind === 'poller'
            ? `the poller's ${POLLER_STOP_TAKING_S} s (it stops taking that long before its own timeout)`
            : `the dispatcher's ${waitS} s (it waits for every invoke)`) +
          (!path.startsWith('task ')
            ? ''
            : task.options.timeLimit === undefined
              ? ' (provider.timeout: give the task functions theirs with custom.celery.defaults.timeout)'
              : ` (timeLimit ${task.options.timeLimit} s + ${TASK_TIMEOUT_MARGIN_S} s)`),
      });
    }
    add(planned, `task ${task.name}`);
    if (task.schedule) {
      try {
        add(cronFunction(task, task.schedule, config), `task ${task.name}`);
      } catch (error) {
        if (!(error instanceof InvalidConfigError)) throw error;
        issues.push(...error.issues);
      }
    }
  }
  if (drainer.kind === 'poller' && timeoutOf(drainer, context) <= POLLER_STOP_TAKING_S) {
    issues.push({
      path: `${CONFIG_PATH}.poller.timeout`,
      message: `must exceed ${POLLER_STOP_TAKING_S} s: the poller stops taking that long before its timeout`,
    });
  }
  add(drainer, `${CONFIG_PATH}.${drainer.kind}`);
  for (const producer of producerFunctions(config)) add(producer, `${CONFIG_PATH}.producers`);
  if (issues.length > 0) throw new InvalidConfigError('serverless-celery', issues);

  const environment: Record<string, unknown> = { FUNCTION_PREFIX: prefix };
  if (config.broker.url !== undefined) environment.BROKER_URL = config.broker.url;
  const secretArn = brokerSecretArn(config.broker);
  if (secretArn !== undefined) environment.BROKER_SECRET_ARN = secretArn;
  // Task functions only need to know it is set (they return results); the poller and the
  // dispatcher store them.
  if (config.resultBackend !== undefined) environment.RESULT_BACKEND = config.resultBackend;
  if (config.events) environment.CELERY_EVENTS = 'true';
  return {
    prefix,
    frameworkPrefix,
    functions,
    taskFunctionNames: functions
      .filter((fn) => fn.kind === 'task')
      .map((fn) => `${prefix}${fn.key}`),
    environment,
    ...(secretArn === undefined ? {} : { brokerSecretArn: secretArn }),
  };
}

/**
 * `config` with the log retention of every generated function as the layer under `defaults`:
 * `custom.celery.logRetentionInDays`, else none when the provider sets one (the functions
 * inherit it), else {@link DEFAULT_LOG_RETENTION_DAYS}.
 */
function withLogRetention(config: CeleryConfig, context: PlanContext): CeleryConfig {
  const days =
    config.logRetentionInDays ??
    (context.providerLogRetentionInDays === undefined ? DEFAULT_LOG_RETENTION_DAYS : undefined);
  return days === undefined
    ? config
    : { ...config, defaults: { logRetentionInDays: days, ...config.defaults } };
}

/** A prefix of at most `room` characters to suggest: the service's initials and the stage. */
function shortPrefix(context: PlanContext, room: number): string {
  const initials = context.service
    .split(/[-_]/)
    .map((word) => word.charAt(0))
    .join('');
  const head = `${initials}-${context.stage}`.slice(0, room - 1).replace(/-+$/, '');
  return `${head}-`;
}

/** The queues the Amazon MQ event sources consume: those given, else every queue of the registry. */
function amazonMqQueues(registry: Registry, config: CeleryConfig, issues: FieldIssue[]): string[] {
  const given = config.broker.kind === 'rabbitmq' ? config.broker.amazonMq?.queues : undefined;
  for (const queue of given ?? []) {
    if (!registry.queue(queue)) {
      issues.push({
        path: `${CONFIG_PATH}.broker.amazonMq.queues`,
        message: `queue ${queue} is not declared by the registry`,
      });
    }
  }
  return given ? [...given] : registry.queues.map((queue) => queue.name);
}

function timeoutOf(planned: PlannedFunction, context: PlanContext): number {
  return (
    (planned.definition.timeout as number | undefined) ??
    context.providerTimeout ??
    FRAMEWORK_TIMEOUT_S
  );
}

/** Overrides of tasks the registry does not have are typos (or aliases), not silent no-ops. */
function checkTaskOverrides(registry: Registry, config: CeleryConfig, issues: FieldIssue[]): void {
  for (const name of Object.keys(config.tasks)) {
    const lookup = registry.lookup(name);
    if (lookup.kind === 'task' && lookup.task.name === name) continue;
    issues.push({
      path: `${CONFIG_PATH}.tasks.${name}`,
      message:
        lookup.kind === 'task'
          ? `${name} is an alias of ${lookup.task.name}: use the task's name`
          : `no task of that name in the registry (its tasks: ${registry.tasks.map((task) => task.name).join(', ')})`,
    });
  }
}

/**
 * `serverless-celery send <task>`: Celery's `celery call`. Validates the call with the task's
 * schema before anything reaches the broker, publishes it, prints the task id.
 */
import type { Command } from 'commander';
import { InvalidArgumentsError, PayloadTooLargeError } from '../../core/errors.js';
import { DEFAULT_MAX_BODY_BYTES, type JsonObject, type JsonValue } from '../../core/json.js';
import type { TaskMessage } from '../../core/message.js';
import type { Registry } from '../../core/registry.js';
import type { Task } from '../../core/task.js';
import { buildCallMessage } from '../../core/task-call.js';
import type { LoadedApp } from '../app-loader.js';
import { chooseBroker, withBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { EXIT_CODES, UsageError } from '../exit-codes.js';
import {
  type CommonOptions,
  isoDate,
  jsonArray,
  jsonObject,
  nonNegativeInteger,
  seconds,
  secondsOrDate,
  withCommonOptions,
} from '../options.js';

/** Options of `send`. */
export interface SendOptions extends CommonOptions {
  readonly args?: JsonValue[];
  readonly kwargs?: JsonObject;
  readonly countdown?: number;
  readonly eta?: Date;
  readonly expires?: number | Date;
  readonly priority?: number;
  readonly queue?: string;
}

/** Adds `send` to the program. */
export function registerSend(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('send')
      .description('validate a task call with its schema, publish it, print its id')
      .argument('<task>', "task name (or alias); another app's task needs --queue"),
  )
    .option('--args <json>', 'positional arguments, a JSON array', jsonArray)
    .option('--kwargs <json>', 'keyword arguments, a JSON object', jsonObject)
    .option('--countdown <seconds>', 'run no earlier than this many seconds from now', seconds)
    .option('--eta <iso>', 'run no earlier than this ISO 8601 date-time', isoDate)
    .option('--expires <seconds|iso>', 'discard if not started by then', secondsOrDate)
    .option(
      '--priority <n>',
      'message priority, 0-255 (0-9 meaningful on Redis)',
      nonNegativeInteger,
    )
    .option('--queue <name>', "queue to publish to (default: the task's)")
    .addHelpText(
      'after',
      `\nPrints the task id on stdout. Example:\n  serverless-celery send ingest.save_event --kwargs '{"event_id": "evt-1"}' --countdown 10`,
    )
    .action(async (task: string, options: SendOptions) => {
      done(await runSend(context, task, options));
    });
}

/**
 * Runs `send`.
 *
 * @throws UsageError for an unknown task, both `--countdown` and `--eta`, or arguments the task
 *   refuses (every bad field named)
 */
export async function runSend(
  context: CliContext,
  taskName: string,
  options: SendOptions,
): Promise<number> {
  if (options.countdown !== undefined && options.eta !== undefined) {
    throw new UsageError('--countdown and --eta both say when to run: give one of them');
  }
  const app = await context.loadApp(options.app);
  const lookup = app.registry.lookup(taskName);
  if (lookup.kind === 'unregistered' && options.queue !== undefined) {
    return sendUnchecked(context, app, taskName, options, options.queue);
  }
  const task = findTask(app.registry, taskName, app.module);
  const message = buildMessage(task.name, options, (call) => task.createMessage(call));
  if (!app.registry.queue(message.routingKey)) {
    context.stderr(
      `warning: queue ${message.routingKey} is not declared by the app; no worker of it consumes it\n`,
    );
  }
  await withBroker(chooseBroker(context, app, options.broker), (broker) =>
    broker.publish([message]),
  );
  context.stdout(`${message.id}\n`);
  return EXIT_CODES.ok;
}

/**
 * Celery's `send_task` for a name this app does not declare (a task a Python app implements):
 * the arguments are checked to be plain JSON only, and stderr says so.
 */
async function sendUnchecked(
  context: CliContext,
  app: LoadedApp,
  taskName: string,
  options: SendOptions,
  queue: string,
): Promise<number> {
  const defaults = {
    name: taskName,
    queue,
    maxArgumentBytes: DEFAULT_MAX_BODY_BYTES,
    ignoreResult: false,
  };
  const message = buildMessage(taskName, options, (call) =>
    buildCallMessage(defaults, call, [], new Date()),
  );
  await withBroker(chooseBroker(context, app, options.broker), (broker) =>
    broker.publish([message]),
  );
  context.stderr(
    `warning: ${taskName} is not a task of ${app.module}; sent unchecked to ${queue}\n`,
  );
  context.stdout(`${message.id}\n`);
  return EXIT_CODES.ok;
}

/** The registered task named `name` (or aliased so). */
export function findTask(registry: Registry, name: string, module: string): Task {
  const lookup = registry.lookup(name);
  if (lookup.kind === 'task') return lookup.task;
  const known = registry.tasks.map((task) => task.name).join(', ') || '(none)';
  throw new UsageError(
    `unknown task ${name}: the app ${module} has ${known} (for a task another app implements, give --queue)`,
  );
}

/** The call the options describe. */
type CliCall = Pick<
  SendOptions,
  'args' | 'kwargs' | 'countdown' | 'eta' | 'expires' | 'priority' | 'queue'
>;

function buildMessage(
  taskName: string,
  options: SendOptions,
  create: (call: CliCall) => TaskMessage,
): TaskMessage {
  try {
    return create({
      ...(options.args === undefined ? {} : { args: options.args }),
      ...(options.kwargs === undefined ? {} : { kwargs: options.kwargs }),
      ...(options.countdown === undefined ? {} : { countdown: options.countdown }),
      ...(options.eta === undefined ? {} : { eta: options.eta }),
      ...(options.expires === undefined ? {} : { expires: options.expires }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.queue === undefined ? {} : { queue: options.queue }),
    });
  } catch (error) {
    if (error instanceof InvalidArgumentsError) {
      const issues = error.issues.map((issue) => `\n  ${issue.path || '(root)'}: ${issue.message}`);
      throw new UsageError(`invalid arguments for task ${taskName}:${issues.join('')}`, {
        cause: error,
      });
    }
    if (error instanceof PayloadTooLargeError)
      throw new UsageError(error.message, { cause: error });
    throw error;
  }
}

/**
 * `serverless-celery worker`: the long-lived poller (`sentry run worker`). Receives batches,
 * runs them in this process (`--invoke local`) or invokes each task's Lambda function
 * (`--invoke lambda`, what the `poller` function does every minute), settles every message from
 * its outcome and prints a line per settled message. SIGINT/SIGTERM: stop taking messages,
 * settle what is held, exit 0. `--events` (`-E`, as Celery's) sends Celery events that Flower and
 * `celery events` read; `--remote-control` answers `celery inspect ping|active|registered`.
 */
import { type Command, Option } from 'commander';
import { type BrokerConfigInput, brokerKindOf } from '../../config/broker-config.js';
import { brokerSecretArnOf } from '../../config/broker-secret.js';
import { celeryNodeName, type EventDispatcher } from '../../core/event-dispatcher.js';
import type { Registry } from '../../core/registry.js';
import type { ControlMailbox } from '../../core/remote-control.js';
import type { TaskExecutor } from '../../worker/executor.js';
import { queuesOf } from '../app-loader.js';
import { chooseBroker, withBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';
import { chooseLogFormat, formatAttempt, LOG_FORMATS } from '../log-format.js';
import { type CommonOptions, nameList, positiveInteger, withCommonOptions } from '../options.js';
import { chooseResultBackend } from '../result-backend-choice.js';

/** How tasks are run. */
export const INVOKE_MODES = ['local', 'lambda'] as const;

/** Options of `worker`. */
export interface WorkerCommandOptions extends CommonOptions {
  /** @defaultValue every queue the app declares */
  readonly queues?: string[];
  /** Tasks running at once (local), or invokes in flight (lambda). @defaultValue 10 */
  readonly concurrency?: number;
  /** With `invoke: 'lambda'`: most messages per invoke. @defaultValue 10 */
  readonly invokeBatchSize?: number;
  /** Held at most: this many times what runs at once (Celery's). @defaultValue 4 */
  readonly prefetchMultiplier?: number;
  /** @defaultValue `local` */
  readonly invoke?: (typeof INVOKE_MODES)[number];
  /** `<service>-<stage>-` @defaultValue `$FUNCTION_PREFIX` */
  readonly functionPrefix?: string;
  /** @defaultValue `$LAMBDA_ENDPOINT`, else AWS */
  readonly lambdaEndpoint?: string;
  /** Longest wait per receive, ms. @defaultValue 1000 */
  readonly waitMs?: number;
  /** Where results are stored. @defaultValue the app runtime's, else `$RESULT_BACKEND`, else none */
  readonly resultBackend?: string;
  /** Send Celery events (Celery's `-E`). @defaultValue false */
  readonly events?: boolean;
  /** Answer Celery's remote control (`celery inspect ping|active|registered`). @defaultValue false */
  readonly remoteControl?: boolean;
  /** The node name events and remote control use (Celery's `-n`, `%h` expanded). @defaultValue `celery@<host>` */
  readonly hostname?: string;
  /** The line per message. @defaultValue `$LOG_FORMAT`, else `text` on a terminal, `json` elsewhere */
  readonly logFormat?: (typeof LOG_FORMATS)[number];
}

/** Adds `worker` to the program. */
export function registerWorker(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('worker')
      .description('consume queues and run their tasks until SIGINT/SIGTERM, a line per message'),
  )
    .option(
      '--queues <names>',
      'comma-separated queues (default: every queue of the app)',
      nameList,
    )
    .option(
      '--concurrency <n>',
      'tasks running at once (local), or invokes in flight (lambda)',
      positiveInteger,
      10,
    )
    .option(
      '--invoke-batch-size <n>',
      'with --invoke lambda: most messages per invoke',
      positiveInteger,
      10,
    )
    .option(
      '--prefetch-multiplier <n>',
      'hold at most n times what runs at once (Celery worker_prefetch_multiplier)',
      positiveInteger,
      4,
    )
    .addOption(
      new Option(
        '--invoke <mode>',
        "'local' runs tasks in this process; 'lambda' invokes their functions",
      )
        .choices(INVOKE_MODES)
        .default('local'),
    )
    .option(
      '--function-prefix <prefix>',
      'with --invoke lambda: <service>-<stage>- (default: $FUNCTION_PREFIX)',
    )
    .option(
      '--lambda-endpoint <url>',
      'with --invoke lambda: Lambda API endpoint (default: $LAMBDA_ENDPOINT)',
    )
    .option(
      '--result-backend <url>',
      "redis:// URL results are stored at, Celery's format (default: the app's, else $RESULT_BACKEND)",
    )
    .option(
      '-E, --events',
      'send Celery events (task-*, worker-*) for Flower and `celery events` (Celery -E)',
    )
    .option(
      '-n, --hostname <name>',
      "node name for events and remote control, Celery's -n (%h: host name; default celery@%h)",
    )
    .option(
      '--remote-control',
      'answer `celery inspect ping|active|registered` (Celery remote control) for Flower and health checks',
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'line per message: text (people) or json (log collectors); default: $LOG_FORMAT, else text on a terminal, json elsewhere',
      ).choices(LOG_FORMATS),
    )
    .action(async (options: WorkerCommandOptions) => {
      done(await runWorkerCommand(context, options));
    });
}

/** Runs `worker` until a shutdown signal; resolves with 0 once what it held is settled. */
export async function runWorkerCommand(
  context: CliContext,
  options: WorkerCommandOptions,
): Promise<number> {
  const app = await context.loadApp(options.app);
  const { registry } = app;
  const queues = queuesOf(context, app, options.queues);
  const invoke = options.invoke ?? 'local';
  const resultBackend = await chooseResultBackend(context, app, options.resultBackend);
  // Loaded here, as the worker loop below: other commands start without them.
  const { localExecutor, workerRunOptions } = await import('../../worker/executor.js');
  const executor =
    invoke === 'lambda'
      ? await lambdaMode(context, registry, options)
      : localExecutor(registry, workerRunOptions({ resultBackend, events: options.events }));
  const { runWorker } = await import('../../worker/local-worker.js');
  const choice = chooseBroker(context, app, options.broker);
  const logFormat = chooseLogFormat(options.logFormat, context.env, context.stdoutIsTTY);
  const hostname = options.hostname === undefined ? undefined : celeryNodeName(options.hostname);
  const events = options.events ? await openEvents(context, choice.url, hostname) : null;
  const mailbox = options.remoteControl ? await openMailbox(context, choice.url) : null;
  const closeEvents = () => Promise.all([events?.close(), mailbox?.close()]);
  return withBroker(choice, async (broker) => {
    // Fail fast, with the one-line explanation, when the broker is down at start; once running,
    // the loop rides out broker restarts by itself.
    await broker.stats(queues[0] as string);
    const stop = new AbortController();
    const dispose = context.onShutdown((signal) => {
      context.stderr(`worker: ${signal}: taking no more messages, settling those in hand\n`);
      stop.abort();
    });
    context.stderr(
      `worker: consuming ${queues.join(', ')} on ${choice.label}, invoke ${invoke}, ` +
        `concurrency ${options.concurrency ?? 10} (Ctrl-C to stop)\n`,
    );
    try {
      await runWorker(broker, registry, {
        queues,
        executor,
        resultBackend,
        events,
        remoteControl: mailbox,
        ...(hostname === undefined ? {} : { hostname }),
        concurrency: options.concurrency ?? 10,
        prefetchMultiplier: options.prefetchMultiplier ?? 4,
        signal: stop.signal,
        ...(options.waitMs === undefined ? {} : { waitMs: options.waitMs }),
        logger: { warn: (message) => context.stderr(`warning: ${message}\n`) },
        onOutcome: (event) =>
          context.stdout(formatAttempt(logFormat, event, registry, new Date(context.now()))),
      });
    } finally {
      dispose();
      await resultBackend?.close();
    }
    context.stderr('worker: stopped\n');
    return EXIT_CODES.ok;
  }).finally(closeEvents);
}

/** The event dispatcher on the worker's broker, with its deployed credentials when it has them. */
async function openEvents(
  context: CliContext,
  url: string,
  hostname: string | undefined,
): Promise<EventDispatcher> {
  // Loaded only with --events: a worker without them never loads the dispatchers.
  const { createEventDispatcher } = await import('../../brokers/create-event-dispatcher.js');
  // A long-lived process: no publisher confirms, as Celery's worker (see the option).
  return createEventDispatcher(withSecret(context, url), {
    confirm: false,
    ...(hostname === undefined ? {} : { hostname }),
  });
}

/** The remote-control mailbox on the worker's broker (loaded only with --remote-control). */
async function openMailbox(context: CliContext, url: string): Promise<ControlMailbox> {
  const { createControlMailbox } = await import('../../brokers/create-control-mailbox.js');
  return createControlMailbox(withSecret(context, url));
}

/** The broker's URL, with its deployed credentials' secret when it has one. */
function withSecret(context: CliContext, url: string): BrokerConfigInput {
  const secretArn = brokerSecretArnOf(url, context.env);
  const kind = brokerKindOf(url);
  return secretArn && kind ? { kind, url, secretArn } : url;
}

async function lambdaMode(
  context: CliContext,
  registry: Registry,
  options: WorkerCommandOptions,
): Promise<TaskExecutor> {
  // Loaded here: the AWS SDK is only needed in this mode.
  const [{ lambdaExecutor }, { deployedFunctionName, taskFunctionKeys }] = await Promise.all([
    import('../../lambda/lambda-executor.js'),
    import('../../lambda/function-names.js'),
  ]);
  // Two tasks on one function name, or a name over Lambda's limit, is an app error: say so now.
  taskFunctionKeys(registry);
  const prefix = options.functionPrefix ?? context.env.FUNCTION_PREFIX ?? '';
  const endpoint = options.lambdaEndpoint ?? (context.env.LAMBDA_ENDPOINT || undefined);
  if (prefix === '' && endpoint === undefined) {
    context.stderr(
      'warning: no function prefix: invoking task-… without <service>-<stage>- ' +
        '(pass --function-prefix or set FUNCTION_PREFIX)\n',
    );
  }
  const client = await context.lambdaClient(endpoint);
  return lambdaExecutor({
    functionName: (task) => deployedFunctionName(registry, task, prefix),
    client,
    batchSize: options.invokeBatchSize ?? 10,
  });
}

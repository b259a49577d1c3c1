/**
 * `serverless-celery dev`: the user's service on this machine, in one command. serverless-offline
 * runs every function of the service's `serverless.yml` (HTTP API, Lambda Invoke API, schedule
 * events), and this process plays the part AWS plays for the queues:
 *
 * - Redis: the `poller` function's loop, invoking each task's function through
 *   serverless-offline's Lambda endpoint with the AWS SDK, exactly as the deployed poller does.
 *   The scheduled poller inside serverless-offline is switched off (`pollerSchedule=false`): it
 *   would race this one, and serverless-offline knows no reserved concurrency;
 * - RabbitMQ: the Amazon MQ event source, which serverless-offline ignores: batches framed as
 *   `aws:rmq` events for the deployed dispatcher, acknowledged once it succeeded.
 *
 * Results: when the functions get a `RESULT_BACKEND` (`custom.celery.resultBackend`, or the one
 * `--result-backend` / `RESULT_BACKEND` names, which wins as the broker does), the local poller or
 * dispatcher stores them there, as the deployed one does; the plugin tells `dev` the URL it
 * resolved (dev-settings.ts).
 *
 * One line per settled message on standard output; everything else (serverless-offline's own
 * output, the banner, warnings) on standard error. SIGINT/SIGTERM: the poller settles what it
 * holds, then serverless-offline stops, exit 0. The session itself is `local-dev.ts`.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { brokerKindOf } from '../../config/broker-config.js';
import { parseResultBackendConfig } from '../../config/result-backend-config.js';
import { InvalidConfigError } from '../../core/errors.js';
import type { DevSettings } from '../../serverless/dev-settings.js';
import { queuesOf } from '../app-loader.js';
import { type BrokerChoice, chooseBroker } from '../broker-choice.js';
import type { CliContext } from '../context.js';
import { AppConfigError, UsageError } from '../exit-codes.js';
import { type CommonOptions, positiveInteger, withCommonOptions } from '../options.js';

/** Options of `dev`. */
export interface DevOptions extends CommonOptions {
  /** serverless-offline's HTTP API. @defaultValue 3000 if free, else any free port */
  readonly httpPort?: number;
  /** serverless-offline's Lambda Invoke API. @defaultValue 3002 if free, else any free port */
  readonly lambdaPort?: number;
  /** @defaultValue `dev` */
  readonly stage?: string;
  /** The service's configuration, relative to the current directory. @defaultValue `serverless.yml` */
  readonly config?: string;
  /** More `serverless.yml` params, `name=value`; they override `dev`'s own. */
  readonly param?: readonly string[];
  /**
   * Where results are stored, over `custom.celery.resultBackend`.
   * @defaultValue `RESULT_BACKEND`, else what `serverless.yml` sets, else none
   */
  readonly resultBackend?: string;
}

/**
 * The `serverless.yml` params `dev` passes to serverless-offline, for a service that wires its
 * `custom.celery` to params as the demo does: `broker` (`redis` or `rabbitmq`: the client the
 * bundles carry), `brokerUrl` and `cronLockUrl` (read by the functions at cold start),
 * `pollerSchedule: false` (the scheduled poller would race the local one) and `producerAuth:
 * none` (serverless-offline cannot start with an `aws_iam` authorizer).
 */
export function devParams(choice: BrokerChoice, cronLockUrl: string): Record<string, string> {
  return {
    broker: choice.identity.kind,
    brokerUrl: choice.url,
    cronLockUrl,
    pollerSchedule: 'false',
    producerAuth: 'none',
  };
}

/**
 * The `SERVERLESS_CELERY_DEV` value of a run, but its `reportFile` (the session's).
 *
 * @param resultBackend - the result backend asked for; empty: `serverless.yml`'s
 */
export function devSettings(
  choice: BrokerChoice,
  cronLockUrl: string,
  resultBackend = '',
): DevSettings {
  return {
    broker: { kind: choice.identity.kind, url: choice.url },
    cronLockUrl,
    pollerSchedule: false,
    producerAuth: 'none',
    resultBackend,
  };
}

/** Adds `dev` to the program. */
export function registerDev(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('dev')
      .description(
        "run the service on serverless-offline and feed it the app's queues, a line per message",
      ),
  )
    .option('--http-port <n>', 'HTTP API port (default: 3000 if free, else any free one)', port)
    .option('--lambda-port <n>', 'Lambda Invoke API port (default: 3002 if free, else any)', port)
    .option('--stage <stage>', 'stage: the function names are <service>-<stage>-…', 'dev')
    .option('--config <file>', "the service's configuration", 'serverless.yml')
    .option(
      '--param <name=value>',
      'a serverless.yml param for serverless-offline (repeatable)',
      collectParam,
      [],
    )
    .option(
      '--result-backend <url>',
      "redis:// URL results are stored at (default: $RESULT_BACKEND, else the serverless.yml's)",
    )
    .addHelpText(
      'after',
      '\nExample:\n  serverless-celery dev --app ./src/app.ts --broker amqp://guest:guest@127.0.0.1:5672/',
    )
    .action(async (options: DevOptions) => {
      done(await runDev(context, options));
    });
}

/**
 * Runs `dev` until a shutdown signal.
 *
 * @returns 0 after a clean stop; 1 when serverless-offline did not start or died
 * @throws UsageError for one port given twice or a bad `--result-backend`; AppConfigError for a
 *   bad `RESULT_BACKEND`, a missing configuration, one without a literal service name, or no
 *   Serverless Framework installed; UnavailableError for an unreachable broker or a taken port
 * @example
 * process.exitCode = await runDev(processContext(), { app: './src/app.ts', httpPort: 4000 });
 */
export async function runDev(context: CliContext, options: DevOptions): Promise<number> {
  const started = performance.now();
  if (options.httpPort !== undefined && options.httpPort === options.lambdaPort) {
    throw new UsageError('--http-port and --lambda-port must differ');
  }
  const app = await context.loadApp(options.app);
  const queues = queuesOf(context, app, undefined);
  const choice = chooseBroker(context, app, options.broker);
  const cronLockUrl = context.env.CRON_LOCK_URL || choice.url;
  if (!brokerKindOf(cronLockUrl)) {
    throw new AppConfigError('CRON_LOCK_URL: the cron lock needs a redis:// or amqp:// URL');
  }
  const resultBackend = chooseResultBackendUrl(context, options.resultBackend);
  // serverless-offline, the AWS SDK and the poller are loaded for this command only.
  const { runDevSession } = await import('../local-dev.js');
  return runDevSession(context, {
    registry: app.registry,
    queues,
    choice,
    config: options.config ?? 'serverless.yml',
    stage: options.stage ?? 'dev',
    ...(options.httpPort === undefined ? {} : { httpPort: options.httpPort }),
    ...(options.lambdaPort === undefined ? {} : { lambdaPort: options.lambdaPort }),
    params: { ...devParams(choice, cronLockUrl), ...paramsOf(options.param ?? []) },
    settings: devSettings(choice, cronLockUrl, resultBackend),
    started,
  });
}

/**
 * The result backend asked for: `--result-backend`, else `RESULT_BACKEND`, else empty (the
 * functions get `serverless.yml`'s, if any). Like the broker, it wins over `serverless.yml`, so
 * that `dev`, `worker` and `result` run with one `RESULT_BACKEND` agree.
 *
 * @throws UsageError for a bad `--result-backend`; AppConfigError for a bad `RESULT_BACKEND`
 */
function chooseResultBackendUrl(context: CliContext, flag: string | undefined): string {
  const fromFlag = flag !== undefined;
  const url = (fromFlag ? flag : context.env.RESULT_BACKEND)?.trim() ?? '';
  if (!url) return '';
  try {
    parseResultBackendConfig(url);
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    const reason = error.issues
      .map((issue) => (issue.path === 'url' ? issue.message : `${issue.path}: ${issue.message}`))
      .join('; ');
    if (fromFlag) throw new UsageError(`--result-backend: ${reason}`, { cause: error });
    throw new AppConfigError(`RESULT_BACKEND: ${reason}`, { cause: error });
  }
  return url;
}

/** A TCP port, 1–65535. */
function port(value: string): number {
  const parsed = positiveInteger(value);
  if (parsed > 65_535) throw new InvalidArgumentError('expected a port, 1 to 65535.');
  return parsed;
}

/** Collects repeated `--param name=value`. */
function collectParam(value: string, previous: readonly string[]): string[] {
  if (!/^[A-Za-z0-9_.-]+=/.test(value)) {
    throw new InvalidArgumentError('expected name=value, e.g. storeUrl=redis://127.0.0.1:6379/0.');
  }
  return [...previous, value];
}

function paramsOf(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
}

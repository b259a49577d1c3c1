/**
 * The `serverless-celery` command line: `send`, `worker`, `cron`, `inspect`, `dlq` and `dev`, in
 * the spirit of Celery's and Sentry's (`celery call`, `sentry run worker`, `sentry run cron`,
 * `celery inspect`) and of `serverless offline`. {@link main} parses the arguments, runs one command and resolves with the
 * exit code; it never exits the process itself (`bin.mjs` does).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BrokerError, InvalidConfigError } from '../core/errors.js';
import { registerCron } from './commands/cron.js';
import { registerDev } from './commands/dev.js';
import { registerDlq } from './commands/dlq.js';
import { registerInspect } from './commands/inspect.js';
import { registerResult } from './commands/result.js';
import { registerSend } from './commands/send.js';
import { registerWorker } from './commands/worker.js';
import { type CliContext, processContext } from './context.js';
import { CliError, EXIT_CODES } from './exit-codes.js';

/** Environment variable that makes unexpected errors print their stack. */
export const DEBUG_ENV = 'SERVERLESS_CELERY_DEBUG';

const EXIT_CODE_HELP = `
Exit codes:
  0   done (a worker, cron or dev stopped by SIGINT/SIGTERM too)
  1   the operation ran and did not succeed (no such dead letter, purge declined,
      serverless-offline did not start or died)
  2   usage: bad option or argument, unknown task, arguments the task's schema refuses
  69  the broker (or the cron lock's Redis) is unreachable or refused, a port is taken
  78  the app module cannot be loaded or is invalid, BROKER_URL is bad, no serverless.yml
  130 a second SIGINT/SIGTERM forced the process out

Environment: SERVERLESS_CELERY_APP, BROKER_URL, CRON_LOCK_URL, FUNCTION_PREFIX, LAMBDA_ENDPOINT.`;

/**
 * Runs the CLI.
 *
 * @param argv - the arguments after the program name
 * @param context - streams, environment and factories @defaultValue this process's
 * @returns the exit code (see {@link EXIT_CODES})
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(
  argv: readonly string[],
  context: CliContext = processContext(),
): Promise<number> {
  let code: number = EXIT_CODES.ok;
  const program = buildProgram(context, (result) => {
    code = result;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    return report(context, error);
  }
}

/** The commander program, every command registered; `done` receives a command's exit code. */
export function buildProgram(context: CliContext, done: (code: number) => void): Command {
  const program = new Command('serverless-celery')
    .description(
      'Celery-style tasks on Redis or RabbitMQ: send, run workers and cron, inspect queues, manage dead letters, run the service locally',
    )
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({
      writeOut: (text) => context.stdout(text),
      writeErr: (text) => context.stderr(text),
    })
    .addHelpText('after', EXIT_CODE_HELP);
  registerSend(program, context, done);
  registerWorker(program, context, done);
  registerCron(program, context, done);
  registerInspect(program, context, done);
  registerResult(program, context, done);
  registerDlq(program, context, done);
  registerDev(program, context, done);
  return program;
}

/** Prints what went wrong, in one message a person can act on, and picks the exit code. */
function report(context: CliContext, error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander printed the message (or the help) already.
    return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  }
  if (error instanceof CliError) {
    context.stderr(`error: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof InvalidConfigError) {
    context.stderr(`error: ${error.message}\n`);
    return EXIT_CODES.config;
  }
  if (error instanceof BrokerError) {
    // Broker failures outside withBroker (none today) still get the right code.
    context.stderr(`error: ${error.message}\n`);
    return EXIT_CODES.unavailable;
  }
  const failure = error instanceof Error ? error : new Error(String(error));
  context.stderr(
    context.env[DEBUG_ENV]
      ? `error: ${failure.stack ?? failure.message}\n`
      : `error: ${failure.name}: ${failure.message} (set ${DEBUG_ENV}=1 for the stack)\n`,
  );
  return EXIT_CODES.failure;
}

function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

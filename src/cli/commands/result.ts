/**
 * `serverless-celery result <id>`: a task's result from the result backend, as Celery's
 * `AsyncResult(id).get(timeout=…)`: the value as JSON on stdout (exit 0), a failure's exception
 * on stderr (exit 1), still not ready after `--timeout` (exit 1 too, saying so). Without
 * `--timeout` it prints the current state at once, ready or not.
 */
import type { Command } from 'commander';
import { resultOf } from '../../core/async-result.js';
import { READY_STATES, TaskFailedError } from '../../core/result-backend.js';
import type { CliContext } from '../context.js';
import { AppConfigError, EXIT_CODES } from '../exit-codes.js';
import { type CommonOptions, seconds, withCommonOptions } from '../options.js';
import { chooseResultBackend } from '../result-backend-choice.js';

/** Options of `result`. */
export interface ResultCommandOptions extends CommonOptions {
  /** Seconds to wait for a ready result. @defaultValue do not wait */
  readonly timeout?: number;
  /** @defaultValue the app runtime's backend, else `$RESULT_BACKEND` */
  readonly resultBackend?: string;
}

/** Adds `result` to the program. */
export function registerResult(
  program: Command,
  context: CliContext,
  done: (code: number) => void,
): void {
  withCommonOptions(
    program
      .command('result')
      .description("print a task's result from the result backend (Celery's AsyncResult.get)")
      .argument('<id>', 'task id'),
  )
    .option('--timeout <seconds>', 'wait up to this long for a ready result', seconds)
    .option('--result-backend <url>', "redis:// URL (default: the app's, else $RESULT_BACKEND)")
    .action(async (id: string, options: ResultCommandOptions) => {
      done(await runResult(context, id, options));
    });
}

/** Runs `result`. */
export async function runResult(
  context: CliContext,
  id: string,
  options: ResultCommandOptions,
): Promise<number> {
  const app = await context.loadApp(options.app);
  const backend = await chooseResultBackend(context, app, options.resultBackend);
  if (!backend) {
    throw new AppConfigError(
      'no result backend: pass --result-backend <redis://…> or set RESULT_BACKEND',
    );
  }
  try {
    const meta =
      options.timeout === undefined
        ? await backend.getMeta(id)
        : await backend.waitFor(id, { timeoutMs: options.timeout * 1000 });
    if (!READY_STATES.has(meta.status)) {
      context.stdout(`${JSON.stringify({ id, state: meta.status })}\n`);
      return EXIT_CODES.ok;
    }
    context.stdout(`${JSON.stringify({ id, state: meta.status, result: resultOf(meta) })}\n`);
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof TaskFailedError) {
      const { exc_type, exc_module } = error.exception;
      context.stdout(`${JSON.stringify({ id, state: error.state, exception: error.exception })}\n`);
      context.stderr(`${exc_module}.${exc_type}: ${error.message}\n`);
      return EXIT_CODES.failure;
    }
    if (error instanceof Error && error.name === 'ResultTimeoutError') {
      context.stderr(`result: ${error.message}\n`);
      return EXIT_CODES.failure;
    }
    throw error;
  } finally {
    await backend.close();
  }
}

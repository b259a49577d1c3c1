/**
 * Exit codes of `serverless-celery` (the BSD `sysexits.h` values where one fits) and the errors
 * that carry them. Commands return a code or throw one of these; only `bin.mjs` exits.
 */
import { CeleryError } from '../core/errors.js';

/**
 * What each exit code means.
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | done (a worker or cron process stopped by SIGINT/SIGTERM included) |
 * | 1 | the operation ran and did not succeed (no such dead letter, purge declined) |
 * | 2 | usage: bad option or argument, unknown task, arguments failing the task's schema, purge without `--yes` off a terminal |
 * | 69 | `EX_UNAVAILABLE`: the broker (or the cron lock's Redis) is unreachable or refused |
 * | 78 | `EX_CONFIG`: the app module cannot be loaded or is invalid, a bad `BROKER_URL` |
 * | 130 | a second SIGINT/SIGTERM forced the process out without settling |
 */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  unavailable: 69,
  config: 78,
  interrupted: 130,
} as const;

/** One of {@link EXIT_CODES}. */
export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** An error the CLI reports as one message and an exit code, without a stack. */
export class CliError extends CeleryError {
  override name: string = 'CliError';
  /** The process's exit code. */
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** The command line asks for something impossible (exit 2). */
export class UsageError extends CliError {
  override name = 'UsageError' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.usage, options);
  }
}

/** The app module or the environment is wrong (exit 78). */
export class AppConfigError extends CliError {
  override name = 'AppConfigError' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.config, options);
  }
}

/** The broker (or another service the command needs) cannot be reached (exit 69). */
export class UnavailableError extends CliError {
  override name = 'UnavailableError' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, EXIT_CODES.unavailable, options);
  }
}

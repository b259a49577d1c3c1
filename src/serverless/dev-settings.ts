/**
 * What `serverless-celery dev` tells the plugin about a local run, through one environment
 * variable of the framework's process: the broker it drains, where cron locks live, that the
 * poller's schedule stays off (a local poller drains instead), that the HTTP producer takes
 * unsigned requests (serverless-offline has no `aws_iam` authorizer) and the result backend
 * asked for, if any. Applied over `custom.celery`, so a user's service runs locally as it is
 * written, params or not.
 *
 * And what the plugin tells `dev` back ({@link DevReport}): the result backend the functions
 * got, once the framework has resolved every variable and param of `serverless.yml`, which only
 * it can. `dev`'s local poller and dispatcher store results there, as the deployed ones do.
 */
import { readFile, writeFile } from 'node:fs/promises';
import * as z from 'zod/mini';
import { OPTIONAL_REDIS_URL_PATTERN, REDIS_URL_SCHEMES } from '../config/redis-url.js';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';
import type { CeleryConfig } from './celery-config.js';

/** The environment variable `dev` sets for the framework's process. */
export const DEV_ENV = 'SERVERLESS_CELERY_DEV';

const devSettingsSchema = z.strictObject({
  /** `custom.celery.broker`: the broker `dev` drains. */
  broker: z.strictObject({
    kind: z.enum(['redis', 'rabbitmq']),
    url: z.string().check(z.minLength(1)),
  }),
  /** `custom.celery.cron.lockUrl`; empty: the broker holds the locks. */
  cronLockUrl: z.string(),
  /** `custom.celery.poller.scheduleEnabled`. */
  pollerSchedule: z.literal(false),
  /** `custom.celery.producers.http.auth`. */
  producerAuth: z.literal('none'),
  /** `custom.celery.resultBackend`; empty: the one `serverless.yml` sets, if any. */
  resultBackend: z._default(
    z.string().check(z.regex(OPTIONAL_REDIS_URL_PATTERN, REDIS_URL_SCHEMES)),
    '',
  ),
  /** Where the plugin writes its {@link DevReport}; absent: it writes none. */
  reportFile: z.optional(z.string().check(z.minLength(1))),
});

/** The value of {@link DEV_ENV}, as JSON. */
export type DevSettings = z.output<typeof devSettingsSchema>;

const devReportSchema = z.strictObject({
  /** `RESULT_BACKEND` of every function; empty: none, no results are stored. */
  resultBackend: z.string(),
});

/** What the plugin found for a `dev` run, in its settings' `reportFile`. */
export type DevReport = z.output<typeof devReportSchema>;

/**
 * The dev settings in `env`, or undefined outside `dev`.
 *
 * @throws InvalidConfigError naming {@link DEV_ENV} when its value is not what `dev` writes
 */
export function devSettingsFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): DevSettings | undefined {
  const text = env[DEV_ENV];
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidConfigError(DEV_ENV, [{ path: '', message: 'is not JSON' }]);
  }
  const parsed = safeParse(devSettingsSchema, value);
  if (!parsed.success) throw new InvalidConfigError(DEV_ENV, toFieldIssues(parsed.error));
  return parsed.data;
}

/**
 * `config` as a `dev` run needs it: its broker (kind and URL only: no secret, no Amazon MQ
 * event source), cron lock, poller schedule off, producer auth `none`, and its result backend
 * when it names one (else `serverless.yml`'s stays). A
 * `functionPrefix` is dropped: `dev`'s local poller and dispatcher invoke the framework's names
 * (`<service>-<stage>-…`, src/cli/local-offline.ts), which serverless-offline then serves.
 */
export function withDevSettings(written: CeleryConfig, dev: DevSettings): CeleryConfig {
  const { functionPrefix: _deployedOnly, ...config } = written;
  // The local broker's URL carries its own credentials: a secretArn (the broker's, or on
  // RabbitMQ the event source's, which BROKER_SECRET_ARN defaults to) would send every local
  // function to Secrets Manager for another broker's password. The Amazon MQ event source goes
  // too: serverless-offline has none, `dev` feeds the dispatcher itself.
  const broker: CeleryConfig['broker'] = { kind: dev.broker.kind, url: dev.broker.url };
  return {
    ...config,
    ...(dev.resultBackend ? { resultBackend: dev.resultBackend } : {}),
    broker,
    cron: { ...config.cron, ...(dev.cronLockUrl ? { lockUrl: dev.cronLockUrl } : {}) },
    poller: { ...config.poller, scheduleEnabled: dev.pollerSchedule },
    producers: {
      ...config.producers,
      http: { ...config.producers.http, auth: dev.producerAuth },
    },
  };
}

/**
 * Writes the {@link DevReport} of `config` (the configuration the functions are built from) to
 * the settings' `reportFile`, readable by its owner only: a result backend URL may hold a
 * password. Does nothing when the settings name no file.
 */
export async function writeDevReport(dev: DevSettings, config: CeleryConfig): Promise<void> {
  if (!dev.reportFile) return;
  const report: DevReport = { resultBackend: config.resultBackend ?? '' };
  await writeFile(dev.reportFile, JSON.stringify(report), { mode: 0o600 });
}

/**
 * The {@link DevReport} in `file`, or undefined when there is none (the plugin did not run).
 *
 * @throws InvalidConfigError when the file holds something the plugin does not write
 */
export async function readDevReport(file: string): Promise<DevReport | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidConfigError(file, [{ path: '', message: 'is not JSON' }]);
  }
  const parsed = safeParse(devReportSchema, value);
  if (!parsed.success) throw new InvalidConfigError(file, toFieldIssues(parsed.error));
  return parsed.data;
}

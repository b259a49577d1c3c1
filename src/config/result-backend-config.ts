/**
 * Result backend configuration: an app's `resultBackend` option or the `RESULT_BACKEND`
 * environment variable, parsed once. Only Redis in Celery's format is supported; the URL may be
 * the broker's own Redis or another. Apps that set neither store nothing and load nothing.
 */
import * as z from 'zod/mini';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';
import { clusterPrefixProblem, defaultKeyPrefix } from './redis-transport-options.js';
import {
  editRedisUrl,
  isRedisClusterUrl,
  REDIS_URL_PATTERN,
  REDIS_URL_SCHEMES,
  singleNodeForm,
} from './redis-url.js';

/** Celery's default `result_expires`: one day. */
export const DEFAULT_RESULT_EXPIRES_SECONDS = 86_400;

/** Result backend options. */
export const resultBackendConfigSchema = z
  .strictObject({
    /**
     * `redis://[[user]:password@]host:port/db`, `rediss://`, or a cluster's
     * `redis+cluster://host:port[,host:port…]/` (`rediss+cluster://`), as the broker's URL.
     */
    url: z.string().check(z.regex(REDIS_URL_PATTERN, REDIS_URL_SCHEMES)),
    /**
     * Celery ≥ 5.3's `result_backend_transport_options={'global_keyprefix': P}`: `P` (plus `_`
     * unless it ends with one of `:_-.`) before every key. Celery 5.2 has no such option. In a
     * cluster it must hold a hash tag, so that a chord's keys share a slot.
     * @defaultValue `''`, and `{celery}:` with a cluster URL
     */
    keyPrefix: z._default(z.string(), ''),
    /** Celery's `result_expires`, in seconds. */
    expiresSeconds: z._default(z.number().check(z.positive()), DEFAULT_RESULT_EXPIRES_SECONDS),
    /**
     * Celery's `result_extended`: every stored meta also carries the request's `name`, `args`,
     * `kwargs`, `worker`, `retries` and `queue`, which Python reads as `AsyncResult.name` etc.
     */
    extended: z._default(z.boolean(), false),
    /**
     * Celery's `task_track_started`: tasks that set no `trackStarted` store a STARTED state when
     * their run begins.
     */
    trackStarted: z._default(z.boolean(), false),
  })
  .check(
    z.superRefine((config, context) => {
      if (!isRedisClusterUrl(config.url)) return;
      const problem = clusterPrefixProblem(config.keyPrefix, "a chord's keys must share a slot");
      if (problem) context.addIssue({ code: 'custom', path: ['keyPrefix'], message: problem });
    }),
  );

/** Parsed result backend options. */
export type ResultBackendConfig = z.infer<typeof resultBackendConfigSchema>;

/** What an app may give: a URL, or the options. */
export type ResultBackendInput = string | z.input<typeof resultBackendConfigSchema>;

/**
 * Parses the option. A URL may carry Celery's setting names as `?global_keyprefix=P`,
 * `?result_expires=S`, `?result_extended=true` and `?task_track_started=true` (the only way to
 * set them through `RESULT_BACKEND`); they are taken off the URL given to the client.
 *
 * @throws InvalidConfigError listing every problem
 */
export function parseResultBackendConfig(input: ResultBackendInput): ResultBackendConfig {
  const raw = typeof input === 'string' ? fromUrl(input) : input;
  const parsed = safeParse(resultBackendConfigSchema, withClusterPrefix(raw));
  if (!parsed.success) throw new InvalidConfigError('resultBackend', toFieldIssues(parsed.error));
  return parsed.data;
}

/** Celery's setting names a URL may carry, and the options they set. */
const URL_SETTINGS = {
  global_keyprefix: 'keyPrefix',
  result_expires: 'expiresSeconds',
  result_extended: 'extended',
  task_track_started: 'trackStarted',
} as const;

function fromUrl(text: string): Record<string, unknown> {
  if (!URL.canParse(singleNodeForm(text))) return { url: text };
  const options: Record<string, unknown> = {};
  // A cluster URL's host list is no WHATWG URL: its single-node form is edited (redis-url.ts).
  const url = editRedisUrl(text, (single) => {
    const parsed = new URL(single);
    for (const [setting, option] of Object.entries(URL_SETTINGS)) {
      const value = parsed.searchParams.get(setting);
      parsed.searchParams.delete(setting);
      if (value !== null) options[option] = fromQuery(option, value);
    }
    return parsed.toString();
  });
  return { ...options, url };
}

/** A cluster URL's key prefix when none is given: the broker's default, `{celery}:`. */
function withClusterPrefix(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const options = raw as { url?: unknown; keyPrefix?: unknown };
  if (options.keyPrefix !== undefined || typeof options.url !== 'string') return raw;
  const keyPrefix = defaultKeyPrefix(options.url);
  return keyPrefix === undefined ? raw : { ...options, keyPrefix };
}

/** A query value as its option's type; one that is not stays text, for the schema to refuse. */
function fromQuery(option: string, value: string): unknown {
  if (option === 'expiresSeconds') return Number(value);
  if (option === 'extended' || option === 'trackStarted') {
    const flag = value.toLowerCase();
    if (flag === 'true' || flag === '1') return true;
    if (flag === 'false' || flag === '0') return false;
  }
  return value;
}

/**
 * The configuration `RESULT_BACKEND` names, or `null` when it is unset or empty (no backend).
 *
 * @throws InvalidConfigError when it is set but invalid
 */
export function resultBackendConfigFromEnv(
  env: Readonly<Record<string, string | undefined>> = process.env,
): ResultBackendConfig | null {
  const value = env.RESULT_BACKEND?.trim();
  return value ? parseResultBackendConfig(value) : null;
}

/**
 * Result backend configuration: an app's `resultBackend` option or the `RESULT_BACKEND`
 * environment variable, parsed once. Only Redis in Celery's format is supported; the URL may be
 * the broker's own Redis or another. Apps that set neither store nothing and load nothing.
 */
import * as z from 'zod/mini';
import { InvalidConfigError } from '../core/errors.js';
import { safeParse, toFieldIssues } from '../core/zod-issues.js';

/** Celery's default `result_expires`: one day. */
export const DEFAULT_RESULT_EXPIRES_SECONDS = 86_400;

/** Result backend options. */
export const resultBackendConfigSchema = z.strictObject({
  /** `redis://[[user]:password@]host:port/db` or `rediss://`. */
  url: z.string().check(z.regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')),
  /**
   * Celery ≥ 5.3's `result_backend_transport_options={'global_keyprefix': P}`: `P` (plus `_`
   * unless it ends with one of `:_-.`) before every key. Celery 5.2 has no such option.
   */
  keyPrefix: z._default(z.string(), ''),
  /** Celery's `result_expires`, in seconds. */
  expiresSeconds: z._default(z.number().check(z.positive()), DEFAULT_RESULT_EXPIRES_SECONDS),
});

/** Parsed result backend options. */
export type ResultBackendConfig = z.infer<typeof resultBackendConfigSchema>;

/** What an app may give: a URL, or the options. */
export type ResultBackendInput = string | z.input<typeof resultBackendConfigSchema>;

/**
 * Parses the option. A URL may carry `?global_keyprefix=P` and `?result_expires=S`; they are
 * taken off the URL given to the client.
 *
 * @throws InvalidConfigError listing every problem
 */
export function parseResultBackendConfig(input: ResultBackendInput): ResultBackendConfig {
  const raw = typeof input === 'string' ? fromUrl(input) : input;
  const parsed = safeParse(resultBackendConfigSchema, raw);
  if (!parsed.success) throw new InvalidConfigError('resultBackend', toFieldIssues(parsed.error));
  return parsed.data;
}

function fromUrl(text: string): z.input<typeof resultBackendConfigSchema> {
  if (!URL.canParse(text)) return { url: text };
  const url = new URL(text);
  const keyPrefix = url.searchParams.get('global_keyprefix');
  const expires = url.searchParams.get('result_expires');
  url.searchParams.delete('global_keyprefix');
  url.searchParams.delete('result_expires');
  return {
    url: url.toString(),
    ...(keyPrefix !== null ? { keyPrefix } : {}),
    ...(expires !== null ? { expiresSeconds: Number(expires) } : {}),
  };
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

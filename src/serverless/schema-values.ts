/**
 * The value shapes `custom.celery` is written in (celery-config.ts and broker-schema.ts), each
 * accepting what YAML gives and what a `--param` gives: `${param:…}` given on the command line
 * (`--param=batchSize=25`) arrives as a string, so numbers, booleans and lists are accepted as
 * strings too.
 */
import * as z from 'zod/mini';

/** A whole number written in YAML, or passed as a `--param` (a string). */
export function wholeNumber(min: number, max: number) {
  return z.pipe(
    z.pipe(
      z.union([z.int(), z.string().check(z.regex(/^\d+$/, 'must be a whole number'))]),
      z.transform((value: number | string) => Number(value)),
    ),
    z.int().check(z.gte(min), z.lte(max)),
  );
}

/** `true`/`false`, or their strings (from a `--param`). */
export const flag = z.pipe(
  z.union([z.boolean(), z.enum(['true', 'false'])]),
  z.transform((value: boolean | 'true' | 'false') => value === true || value === 'true'),
);

/** A CloudFormation intrinsic function (`Ref`, `Fn::GetAtt`, `Fn::ImportValue`…). */
export const intrinsic = z.record(z.string(), z.unknown());

/** A literal value or an intrinsic function. */
export const cfnValue = z.union([z.string().check(z.minLength(1)), intrinsic]);

/**
 * A list of ids (subnets, security groups): a YAML list, or one comma-separated string as a
 * `--param` gives it (`subnet-a,subnet-b`). An empty string is an empty list. Strings inside a
 * list are split too: the framework's validation (ajv, `coerceTypes: 'array'`) hands the plugin
 * a `--param` string already wrapped in a list, `['subnet-a,subnet-b']`.
 */
export function idList(maxItems: number) {
  return z.pipe(
    z.union([z.array(cfnValue), z.string()]),
    z.pipe(
      z.transform((value: string | (string | Record<string, unknown>)[]) =>
        (typeof value === 'string' ? [value] : value).flatMap(
          (id): (string | Record<string, unknown>)[] =>
            typeof id === 'string'
              ? id
                  .split(',')
                  .map((part) => part.trim())
                  .filter((part) => part !== '')
              : [id],
        ),
      ),
      z.array(cfnValue).check(z.maxLength(maxItems, `at most ${maxItems}`)),
    ),
  );
}

/**
 * The retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days, less 1096, which
 * osls' schema of `logRetentionInDays` does not list yet.
 */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** A log retention CloudWatch Logs accepts, as a number or a `--param` string. */
export const logRetentionDays = z.pipe(
  wholeNumber(1, 3653),
  z.number().check(
    z.refine((days: number) => (LOG_RETENTION_DAYS as readonly number[]).includes(days), {
      error: `must be one of CloudWatch Logs' retention periods: ${LOG_RETENTION_DAYS.join(', ')}`,
    }),
  ),
);

/**
 * Parsing with zod and turning its issues into our {@link FieldIssue} list: one readable
 * `path: message` per problem, unrecognised keys named one by one so a typo in an option points
 * at the typo.
 *
 * Our own schemas use `zod/mini`, which tree-shakes (zod's classic API adds about 70 KiB to every
 * function bundle); task schemas may be either kind, since both are zod 4 core schemas.
 */

import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import type { FieldIssue } from './errors.js';

/**
 * `safeParse` with English messages. `zod/mini` loads no locale, so its messages would all read
 * "Invalid input"; classic zod installs English on first use, and we do the same, leaving a
 * locale that the app configured (`z.config(z.locales.de())`) alone. English is imported by its
 * own path: `z.locales.en` would bring every locale (about 300 KiB) into the bundle.
 */
export function safeParse<S extends z.core.$ZodType>(
  schema: S,
  value: unknown,
): z.core.util.SafeParseResult<z.output<S>> {
  if (!z.config().localeError) z.config(en());
  return z.safeParse(schema, value);
}

/**
 * Converts a zod error into field issues.
 *
 * @param error - what `safeParse` returned
 * @param prefix - path of the parsed value inside its parent (e.g. `kwargs`)
 */
export function toFieldIssues(error: z.core.$ZodError, prefix = ''): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    const path = joinPath(prefix, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({
          path: joinPath(path, [key]),
          message: 'unknown option (check the spelling)',
        });
      }
    } else {
      issues.push({ path, message: issue.message });
    }
  }
  return issues;
}

function joinPath(prefix: string, segments: readonly PropertyKey[]): string {
  let path = prefix;
  for (const segment of segments) {
    if (typeof segment === 'number') path += `[${segment}]`;
    else path += path ? `.${String(segment)}` : String(segment);
  }
  return path;
}

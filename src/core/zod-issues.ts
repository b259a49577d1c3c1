/**
 * Turns zod's issues into our {@link FieldIssue} list: one readable `path: message` per problem,
 * unrecognised keys named one by one so a typo in an option points at the typo.
 */
import type { z } from 'zod';
import type { FieldIssue } from './errors.js';

/**
 * Converts a zod error into field issues.
 *
 * @param error - what `safeParse` returned
 * @param prefix - path of the parsed value inside its parent (e.g. `kwargs`)
 */
export function toFieldIssues(error: z.ZodError, prefix = ''): FieldIssue[] {
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

#!/usr/bin/env node
/**
 * `serverless-celery`: runs the CLI and exits with its code. The only place that ends the
 * process (besides a second Ctrl-C).
 *
 * Installed from npm, it runs the compiled `dist/cli/`: the very files an app gets from
 * `import … from 'serverless-celery'`, so the CLI and the app share one copy of each error class
 * (`instanceof` holds across them) and no TypeScript loader starts for a JavaScript app. In a
 * checkout of this repository (`main.ts` beside this file) it runs the sources through tsx, since
 * the demo app and the test fixtures import the sources too.
 */
import { existsSync } from 'node:fs';
import module from 'node:module';

// Node ≥ 22.1 keeps the compiled code of the CLI's modules on disk: later runs start faster.
module.enableCompileCache?.();
// `serverless-celery dlq list | head`: the reader went away, so nothing more can be shown. Node
// would throw EPIPE from the next write as an uncaught error; end quietly instead, as Unix
// tools do.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});
const checkout = existsSync(new URL('./main.ts', import.meta.url));
if (checkout) (await import('tsx/esm/api')).register();
const { main } = await import(checkout ? './main.ts' : '../../dist/cli/main.js');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// An app may leave connections open (a task's own Redis client): once the command is done,
// they must not keep the process alive. Unreferenced, this timer delays nothing otherwise.
setTimeout(() => process.exit(code), 500).unref();

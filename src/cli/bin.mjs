#!/usr/bin/env node
/**
 * `serverless-celery`: loads the TypeScript CLI through tsx and exits with its code. The only
 * place that ends the process (besides a second Ctrl-C).
 */
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// An app may leave connections open (a task's own Redis client): once the command is done,
// they must not keep the process alive. Unreferenced, this timer delays nothing otherwise.
setTimeout(() => process.exit(code), 500).unref();

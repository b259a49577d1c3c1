/**
 * The files of the user's project that `test/integration/package-install.test.ts` writes beside
 * the installed package, written as a user would from the README. `QUEUE_NAME` is replaced by
 * the test's own queue.
 */

/** A JavaScript app: one task, its registry. */
const APP_MJS = `import * as z from 'zod';
import { createRegistry, defineTask } from 'serverless-celery';

export const add = defineTask(
  { name: 'pkg.add', queue: 'QUEUE_NAME', kwargs: z.object({ a: z.number(), b: z.number() }) },
  ({ a, b }) => a + b,
);
export const registry = createRegistry({ tasks: [add], queues: [{ name: 'QUEUE_NAME' }] });
`;

/** The same app in TypeScript, importing its tasks NodeNext-style (`./tasks.js`). */
const TASKS_TS = `import * as z from 'zod';
import { defineTask, SoftTimeLimitExceeded, throwIfAborted } from 'serverless-celery';

export const QUEUE = 'QUEUE_NAME';

export const add = defineTask(
  { name: 'pkg.add', queue: QUEUE, kwargs: z.object({ a: z.number(), b: z.number() }) },
  ({ a, b }, ctx): number => {
    throwIfAborted(ctx.signal);
    return a + b;
  },
);

export function isSoftLimit(error: unknown): boolean {
  return error instanceof SoftTimeLimitExceeded;
}
`;

const APP_TS = `import { createRegistry } from 'serverless-celery';
import { createRuntime } from 'serverless-celery/lambda';
import { add, QUEUE } from './tasks.js';

export const registry = createRegistry({ tasks: [add], queues: [{ name: QUEUE }] });
export const runtime = createRuntime({ registry });
`;

/** Function files and publishing code: what the declarations must type. */
const FUNCTIONS_TS = `import { createBroker, createPublisher, InvalidArgumentsError } from 'serverless-celery';
import {
  createCronHandler,
  createPollerHandler,
  createTaskHandler,
  redisOnceStore,
  redisTickLock,
} from 'serverless-celery/lambda';
import { registry, runtime } from './app.js';
import { add } from './tasks.js';

export const task = createTaskHandler(registry, 'pkg.add', { store: redisOnceStore() });
export const poller = createPollerHandler(runtime, { maxInFlight: 10 });
export const cron = createCronHandler(runtime, 'pkg.add', { lock: redisTickLock('redis://x') });

export async function publish(): Promise<string> {
  const publisher = createPublisher(createBroker('redis://127.0.0.1:6379/0'));
  // @ts-expect-error the task's schema types its kwargs: a is a number
  await publisher.delay(add, { a: 'one', b: 2 }).catch((error: unknown) => error instanceof InvalidArgumentsError);
  return publisher.delay(add, { a: 1, b: 2 });
}
`;

const TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: {
      target: 'ES2023',
      lib: ['ES2023'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      noEmit: true,
      types: ['node'],
    },
    include: ['src'],
  },
  null,
  2,
)}\n`;

/** Imports each entry point and reports the type of what the README uses. */
const CHECK_IMPORTS_MJS = `import * as library from 'serverless-celery';
import * as lambda from 'serverless-celery/lambda';

const types = (namespace, names) => Object.fromEntries(names.map((name) => [name, typeof namespace[name]]));
let deepImport = 'allowed';
try {
  await import('serverless-celery/dist/core/redis-codec.js');
} catch (error) {
  deepImport = error.code;
}
console.log(JSON.stringify({
  library: types(library, ['defineTask', 'createRegistry', 'createPublisher', 'createBroker', 'runLocalWorker',
    'throwIfAborted', 'SoftTimeLimitExceeded', 'TimeLimitExceededError', 'InvalidArgumentsError']),
  lambda: types(lambda, ['createTaskHandler', 'createPollerHandler', 'createAmazonMqDispatcher', 'createCronHandler',
    'createRuntime', 'createHttpProducerHandler', 'redisOnceStore', 'rabbitMqOnceStore', 'redisTickLock']),
  internalsExported: ['redisBindingMember', 'REDIS_PRIORITY_STEPS', 'encodeUnackedEntry', 'RedisBroker']
    .filter((name) => name in library || name in lambda),
  deepImport,
}));
`;

/**
 * osls's way of loading `plugins: [serverless-celery]`: require.resolve, require, `.default`;
 * and the library's names for CommonJS code.
 */
const CHECK_PLUGIN_CJS = `const path = require('node:path');

(async () => {
  let resolved;
  try {
    resolved = require.resolve('serverless-celery');
  } catch (error) {
    console.log(JSON.stringify({ error: error.code }));
    return;
  }
  const loaded = require(resolved);
  const Plugin = loaded && loaded.default ? loaded.default : loaded;
  const subpath = await import('serverless-celery/serverless');
  console.log(JSON.stringify({
    resolved: path.relative(__dirname, resolved),
    plugin: typeof Plugin,
    sameAsSubpath: subpath.default === Plugin,
    library: typeof loaded.defineTask,
  }));
})();
`;

/**
 * Bundles functions as the plugin's esbuild settings do (the deployed broker and whether results
 * are stored defined) and reports which broker clients reach each bundle.
 */
const CHECK_BUNDLES_MJS = `import { build } from 'esbuild';

const registry = "import { registry } from './app.mjs';";
const functions = {
  task: ['redis', 'none', "import { createTaskHandler } from 'serverless-celery/lambda';", 'createTaskHandler(registry, "pkg.add")'],
  poller: ['redis', 'none', "import { createPollerHandler, createRuntime } from 'serverless-celery/lambda';",
    'createPollerHandler(createRuntime({ registry }))'],
  dispatcher: ['rabbitmq', 'none', "import { createAmazonMqDispatcher, createRuntime } from 'serverless-celery/lambda';",
    'createAmazonMqDispatcher(createRuntime({ registry }))'],
  dispatcherWithResults: ['rabbitmq', 'redis', "import { createAmazonMqDispatcher, createRuntime } from 'serverless-celery/lambda';",
    'createAmazonMqDispatcher(createRuntime({ registry }))'],
};
const clients = {};
for (const [name, [broker, results, imports, handler]] of Object.entries(functions)) {
  const result = await build({
    stdin: { contents: [imports, registry, \`export const handler = \${handler};\`].join('\\n'), resolveDir: process.cwd() },
    outfile: \`\${name}.mjs\`,
    bundle: true, write: false, metafile: true, minify: true, format: 'esm', platform: 'node', target: 'node22',
    external: ['@aws-sdk/*'], logLevel: 'error',
    define: {
      'process.env.SERVERLESS_CELERY_BROKER': JSON.stringify(broker),
      'process.env.SERVERLESS_CELERY_RESULTS': JSON.stringify(results),
    },
  });
  const [output] = Object.values(result.metafile.outputs);
  const used = Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0).map(([file]) => file);
  clients[name] = ['ioredis', 'amqplib'].filter((client) => used.some((file) => file.includes(\`node_modules/\${client}/\`)));
}
console.log(JSON.stringify(clients));
`;

/** Path in the project → content. */
export const USER_PROJECT_FILES: Readonly<Record<string, string>> = {
  'app.mjs': APP_MJS,
  'src/tasks.ts': TASKS_TS,
  'src/app.ts': APP_TS,
  'src/functions.ts': FUNCTIONS_TS,
  'tsconfig.json': TSCONFIG,
  'check-imports.mjs': CHECK_IMPORTS_MJS,
  'check-plugin.cjs': CHECK_PLUGIN_CJS,
  'check-bundles.mjs': CHECK_BUNDLES_MJS,
};

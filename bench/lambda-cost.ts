/**
 * Lambda cost: the minified bundle of every function, built as serverless.yml builds it
 * (esbuild: ESM, minified, tree-shaken, `.mjs`, the createRequire banner, `@aws-sdk/*` left to
 * the runtime, `SERVERLESS_CELERY_BROKER` defined as the deployed broker), and the cold init of a
 * per-task function: a fresh `node` process imports the bundle and answers a first invocation
 * (one message) with a fake context. Node's own start-up is left out, as Lambda bills it to the
 * runtime.
 *
 * Two sets: the demo's functions (the plugin's generated entries and `functions/*.ts`, Redis, as
 * `npx osls package` builds them; each carries the demo's Redis store) and the framework's
 * functions for an app of one no-op task (`bench/lambda/noop-app.ts`), per broker: what
 * serverless-celery itself costs.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { build, type Metafile } from 'esbuild';
import { createTaskMessage } from '../src/core/message.js';
import { toRawDelivery } from '../src/core/wire.js';
import { parseCeleryConfig } from '../src/serverless/celery-config.js';
import { ENTRY_DIR, entrySource } from '../src/serverless/function-entries.js';
import { loadAppModule } from '../src/serverless/load-app-module.js';
import { planFunctions } from '../src/serverless/plan-functions.js';
import { BENCH_DIR, type Figure, log, measure, REDIS_URL, round, runScript } from './harness.js';

const run = promisify(execFile);
const ROOT = join(BENCH_DIR, '..');

type DeployedBroker = 'redis' | 'rabbitmq';

/**
 * Where a function's code comes from: a file, or the text of an entry resolved from `resolveDir`
 * (beside noop-app.ts unless said otherwise).
 */
type EntrySource =
  | { readonly file: string }
  | { readonly contents: string; readonly resolveDir?: string };

/** serverless.yml's `custom.esbuild`, as serverless-esbuild hands it to esbuild. */
async function bundle(
  name: string,
  source: EntrySource,
  broker: DeployedBroker,
  outdir: string,
): Promise<{ file: string; metafile: Metafile }> {
  const result = await build({
    ...('file' in source
      ? { entryPoints: { [name]: source.file } }
      : {
          stdin: {
            contents: source.contents,
            resolveDir: source.resolveDir ?? join(BENCH_DIR, 'lambda'),
            sourcefile: `${name}.ts`,
            loader: 'ts',
          },
          outfile: join(outdir, `${name}.mjs`),
        }),
    ...('file' in source ? { outdir, outExtension: { '.js': '.mjs' } } : {}),
    bundle: true,
    minify: true,
    treeShaking: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    mainFields: ['module', 'main'],
    define: {
      'process.env.SERVERLESS_CELERY_BROKER': JSON.stringify(broker),
      'process.env.SERVERLESS_CELERY_RESULTS': '"none"',
    },
    external: ['@aws-sdk/*'],
    sourcemap: false,
    metafile: true,
    logLevel: 'error',
  });
  return { file: join(outdir, `${name}.mjs`), metafile: result.metafile };
}

/** One line per import, then the handler: the shape of every `functions/*.ts`. */
function noopEntry(imports: readonly string[], handler: string): EntrySource {
  return { contents: [...imports, `export const handler = ${handler};`].join('\n') };
}

const APP = "import { registry } from './noop-app.js';";
const RUNTIME = [
  APP,
  "import { createRuntime } from '../../src/lambda/runtime.js';",
  'const runtime = createRuntime({ registry });',
];

/** The framework's functions for the no-op app, with the broker each is deployed with. */
const NOOP_FUNCTIONS: readonly [string, DeployedBroker, EntrySource][] = [
  [
    'noop-task',
    'redis',
    noopEntry(
      [APP, "import { createTaskHandler } from '../../src/lambda/task-handler.js';"],
      "createTaskHandler(registry, 'bench.noop')",
    ),
  ],
  [
    'noop-poller',
    'redis',
    noopEntry(
      [...RUNTIME, "import { createPollerHandler } from '../../src/lambda/poller-handler.js';"],
      'createPollerHandler(runtime)',
    ),
  ],
  [
    'noop-dispatcher',
    'rabbitmq',
    noopEntry(
      [
        ...RUNTIME,
        "import { createAmazonMqDispatcher } from '../../src/lambda/amazon-mq-dispatcher.js';",
      ],
      'createAmazonMqDispatcher(runtime)',
    ),
  ],
  ...(['redis', 'rabbitmq'] as const).flatMap((broker): [string, DeployedBroker, EntrySource][] => [
    [
      `noop-producer-http-${broker}`,
      broker,
      noopEntry(
        [
          ...RUNTIME,
          "import { createHttpProducerHandler } from '../../src/lambda/producer-handlers.js';",
        ],
        'createHttpProducerHandler(runtime)',
      ),
    ],
    [
      `noop-cron-${broker}`,
      broker,
      noopEntry(
        [...RUNTIME, "import { createCronHandler } from '../../src/lambda/cron-handler.js';"],
        "createCronHandler(runtime, 'bench.noop')",
      ),
    ],
  ]),
];

/** The three biggest contributors to a bundle, by package (or our src/ folder). */
function biggest(metafile: Metafile): string {
  const byOwner = new Map<string, number>();
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const owner =
        /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ??
        /^(src\/[^/]+|bench|functions)/.exec(path)?.[1] ??
        path;
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + bytesInOutput);
    }
  }
  return [...byOwner]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([owner, bytes]) => `${owner} ${round(bytes / 1024)}`)
    .join(', ');
}

/** Import + first invocation of a bundled task function, in a fresh process (ms). */
async function coldInit(file: string, task: string, kwargs: Record<string, string>) {
  const raw = toRawDelivery(createTaskMessage({ task, queue: 'bench', kwargs }));
  const script = `
    const started = performance.now();
    const { handler } = await import(${JSON.stringify(file)});
    const loaded = performance.now();
    const context = {
      functionName: 'bench', awsRequestId: 'bench', callbackWaitsForEmptyEventLoop: false,
      getRemainingTimeInMillis: () => 30000,
    };
    const result = await handler({ messages: [${JSON.stringify(raw)}] }, context);
    const done = performance.now();
    console.log(JSON.stringify({ load: loaded - started, total: done - started, outcome: result.outcomes[0].kind }));
    process.exit(0);
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, STORE_URL: REDIS_URL, BROKER_URL: REDIS_URL },
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as {
    load: number;
    total: number;
    outcome: string;
  };
}

/**
 * The demo's functions as `npx osls package` builds them (Redis): the entries the plugin
 * generates from the demo's registry (src/serverless/function-entries.ts), and its own
 * `functions/*.ts`.
 */
async function demoFunctions(): Promise<[string, DeployedBroker, EntrySource][]> {
  const app = await loadAppModule('./src/demo/app.ts', ROOT);
  const config = parseCeleryConfig({ app: './src/demo/app.ts', broker: { kind: 'redis' } });
  const plan = planFunctions(app.registry, config, {
    service: 'serverless-celery',
    stage: 'dev',
    providerTimeout: 30,
  });
  const resolveDir = join(ROOT, ENTRY_DIR);
  // The plugin creates it when packaging; on a fresh checkout esbuild cannot resolve from it.
  await mkdir(resolveDir, { recursive: true });
  const generated = plan.functions.map((fn): [string, DeployedBroker, EntrySource] => [
    fn.key,
    'redis',
    { contents: entrySource(fn, app, ROOT), resolveDir },
  ]);
  const own = (await readdir(join(ROOT, 'functions')))
    .filter((name) => name.endsWith('.ts'))
    .map((name): [string, DeployedBroker, EntrySource] => [
      basename(name, '.ts'),
      'redis',
      { file: join(ROOT, 'functions', name) },
    ]);
  return [...generated, ...own];
}

await runScript('lambda-cost', async (add) => {
  const outdir = await mkdtemp(join(tmpdir(), 'sc-bench-lambda-'));
  try {
    const demo = await demoFunctions();
    const built = new Map<string, string>();
    for (const [name, broker, source] of [...demo, ...NOOP_FUNCTIONS]) {
      const { file, metafile } = await bundle(name, source, broker, outdir);
      built.set(name, file);
      const kib = (await stat(file)).size / 1024;
      const noop = name.startsWith('noop-');
      const figure: Figure = {
        id: `lambda.size.${name}`,
        system: 'ours',
        broker: 'none',
        label: noop
          ? `framework only: ${name.slice('noop-'.length)} (${broker})`
          : `demo: ${name} (${broker})`,
        settings: 'only',
        unit: 'KiB',
        value: round(kib),
        samples: [round(kib)],
        note: `biggest (KiB): ${biggest(metafile)}`,
      };
      log(`${figure.id}: ${figure.value} KiB (${figure.note})`);
      await add(figure);
    }
    const inits: [string, string, Record<string, string>][] = [
      ['noop-task', 'bench.noop', {}],
      ['task-ingest-save_event', 'ingest.save_event', { event_id: 'bench-missing' }],
    ];
    for (const [name, task, kwargs] of inits) {
      const file = built.get(name) as string;
      const loads: number[] = [];
      await add(
        measure(
          {
            id: `lambda.init.${name}`,
            system: 'ours',
            broker: 'none',
            label: `${name}: import + first invocation`,
            settings: 'only',
            unit: 'ms',
          },
          async () => {
            const result = await coldInit(file, task, kwargs);
            if (result.outcome !== 'succeeded' && result.outcome !== 'ignored') {
              throw new Error(`${name} answered ${result.outcome}`);
            }
            loads.push(round(result.load));
            return result.total;
          },
        ).then((figure) => ({ ...figure, note: `of which import: ${loads.join(', ')} ms` })),
      );
    }
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
});

/**
 * CLI start-up as a user meets it: the packed tarball installed into a fresh project outside
 * this repository (`test/helpers/packed-package.ts`), then the wall time of whole CLI calls, each
 * a new process: `send --help`, a real `send` of a JavaScript app's task to the bench Redis, the
 * same for a TypeScript app (tsx registered on the way), and through `npx` (npm's own start-up
 * added). `node -e 0` is the floor. Also the tarball's size.
 *
 * Each sample is the median of {@link CALLS} calls; the figure is the median of the samples.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { USER_PROJECT_FILES } from '../test/fixtures-app/user-project.js';
import {
  installProject,
  packRepository,
  pinnedVersions,
  runIn,
} from '../test/helpers/packed-package.js';
import {
  cleanQueue,
  type Figure,
  log,
  measure,
  median,
  REDIS_URL,
  round,
  runScript,
} from './harness.js';

/** Calls per sample. */
const CALLS = 7;
const QUEUE = 'bench.cli';
const BIN = 'node_modules/.bin/serverless-celery';
const SEND = ['send', 'pkg.add', '--kwargs', '{"a": 1, "b": 2}'];

/** One kind of call: its figure's id and label, and the command line. */
interface Call {
  readonly id: string;
  readonly label: string;
  readonly broker: Figure['broker'];
  readonly command: string;
  readonly args: readonly string[];
}

const CALLS_MEASURED: readonly Call[] = [
  {
    id: 'cli.start.node',
    label: 'node -e 0 (the floor)',
    broker: 'none',
    command: 'node',
    args: ['-e', '0'],
  },
  {
    id: 'cli.start.help',
    label: 'send --help',
    broker: 'none',
    command: 'node',
    args: [BIN, 'send', '--help'],
  },
  {
    id: 'cli.start.send-js',
    label: 'send, JavaScript app (app.mjs)',
    broker: 'redis',
    command: 'node',
    args: [BIN, ...SEND, '--app', './app.mjs'],
  },
  {
    id: 'cli.start.send-ts',
    label: 'send, TypeScript app (src/app.ts, through tsx)',
    broker: 'redis',
    command: 'node',
    args: [BIN, ...SEND, '--app', './src/app.ts'],
  },
  {
    id: 'cli.start.npx-send-js',
    label: 'npx serverless-celery send, JavaScript app',
    broker: 'redis',
    command: 'npx',
    args: ['--no-install', 'serverless-celery', ...SEND, '--app', './app.mjs'],
  },
];

/** Median wall time of {@link CALLS} calls, ms; any failed call fails the sample. */
async function timeCalls(project: string, call: Call): Promise<number> {
  const times: number[] = [];
  for (let index = 0; index < CALLS; index++) {
    const result = await runIn(project, call.command, call.args, { BROKER_URL: REDIS_URL });
    if (result.code !== 0) throw new Error(`${call.label} exited ${result.code}: ${result.stderr}`);
    times.push(result.ms);
  }
  return median(times);
}

await runScript('cli-start', async (add) => {
  const workDir = await mkdtemp(join(tmpdir(), 'sc-bench-cli-'));
  try {
    const tarball = await packRepository(join(workDir, 'pack'));
    const kib = round(tarball.size / 1024);
    log(`package.tarball: ${kib} KiB, ${tarball.files.length} files`);
    await add({
      id: 'package.tarball',
      system: 'ours',
      broker: 'none',
      label: 'npm pack tarball, compressed',
      settings: 'only',
      unit: 'KiB',
      value: kib,
      samples: [kib],
      note: `${tarball.files.length} files, ${round(tarball.unpackedSize / 1024)} KiB unpacked`,
    });
    const project = await installProject(
      join(workDir, 'project'),
      tarball.file,
      await pinnedVersions(['zod']),
    );
    for (const [name, text] of Object.entries(USER_PROJECT_FILES)) {
      await mkdir(dirname(join(project, name)), { recursive: true });
      await writeFile(join(project, name), text.replaceAll('QUEUE_NAME', QUEUE));
    }
    for (const call of CALLS_MEASURED) {
      await add(
        measure(
          {
            id: call.id,
            system: 'ours',
            broker: call.broker,
            label: call.label,
            settings: 'only',
            unit: 'ms',
            n: CALLS,
          },
          () => timeCalls(project, call),
        ),
      );
    }
  } finally {
    await cleanQueue('redis', QUEUE);
    await rm(workDir, { recursive: true, force: true });
  }
});

/**
 * The package as a user gets it: `npm pack` of this repository (its `prepack` builds `dist/`),
 * installed with `npm install <tarball>` into a fresh folder of the OS temp directory, outside
 * this repository, so nothing resolves to its sources or its `node_modules`. Dependencies come
 * from the npm registry (or npm's cache of it). Used by `test/integration/package-install.test.ts`,
 * `test/integration/example-project.test.ts` (which installs `examples/orders-service` from its
 * own package.json) and `bench/cli-start.ts`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';

const run = promisify(execFile);

/** What `npm pack --json` says of the tarball. */
export interface PackedTarball {
  /** Absolute path of the `.tgz`. */
  readonly file: string;
  /** Compressed size, bytes. */
  readonly size: number;
  readonly unpackedSize: number;
  /** Every path in the tarball, relative to the package root. */
  readonly files: readonly string[];
}

/**
 * The environment of this process without npm's `npm_*` variables: run from an npm script, a
 * child npm would otherwise take the parent's `npm_config_*` (its prefix among them) as its own.
 */
export function npmFreeEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key) && key !== 'INIT_CWD'),
  );
  // LOG_FORMAT: the worker's human lines, which tests read from a pipe (else JSON).
  return { LOG_FORMAT: 'text', ...env, ...extra };
}

/** Packs this repository into `destination` (building `dist/` first, as `prepack` does). */
export async function packRepository(destination: string): Promise<PackedTarball> {
  await mkdir(destination, { recursive: true });
  const packed = await runIn(ROOT, 'npm', ['pack', '--json', '--pack-destination', destination]);
  if (packed.code !== 0) {
    // The build's compiler errors are on stdout, npm's summary on stderr.
    throw new Error(`npm pack failed (exit ${packed.code}):\n${packed.stdout}\n${packed.stderr}`);
  }
  const stdout = packed.stdout;
  // Lifecycle scripts may print before the JSON report.
  const [report] = JSON.parse(stdout.slice(stdout.indexOf('['))) as {
    filename: string;
    size: number;
    unpackedSize: number;
    files: { path: string }[];
  }[];
  if (!report) throw new Error(`npm pack printed no report:\n${stdout}`);
  return {
    file: path.join(destination, report.filename),
    size: report.size,
    unpackedSize: report.unpackedSize,
    files: report.files.map((file) => file.path),
  };
}

/** The versions this repository pins for `names`, so the user's project installs the same. */
export async function pinnedVersions(names: readonly string[]): Promise<string[]> {
  const pkg = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  return names.map((name) => {
    const version = pkg.dependencies[name] ?? pkg.devDependencies[name];
    if (!version) throw new Error(`package.json pins no version of ${name}`);
    return `${name}@${version}`;
  });
}

/**
 * Creates an ESM project in `directory` and installs the tarball and `packages` into it.
 *
 * @returns `directory`
 */
export async function installProject(
  directory: string,
  tarball: string,
  packages: readonly string[] = [],
): Promise<string> {
  await mkdir(directory, { recursive: true });
  await writeFile(
    path.join(directory, 'package.json'),
    `${JSON.stringify({ name: 'sc-user-project', private: true, type: 'module' }, null, 2)}\n`,
  );
  // The cache first: the registry is asked only for what the cache lacks.
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...packages],
    { cwd: directory, env: npmFreeEnv(), maxBuffer: 16 * 1024 * 1024 },
  );
  return directory;
}

/**
 * Installs the dependencies `directory`'s own package.json lists (a project copied with its
 * package.json, such as an example under `examples/`), as `npm install` there would.
 *
 * @returns `directory`
 */
export async function installDependencies(directory: string): Promise<string> {
  // The cache first: the registry is asked only for what the cache lacks.
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: directory,
    env: npmFreeEnv(),
    maxBuffer: 16 * 1024 * 1024,
  });
  return directory;
}

/** What a finished command did. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time, ms. */
  readonly ms: number;
}

/** Runs `command` in `cwd` to the end; a non-zero exit is a result, not an error. */
export async function runIn(
  cwd: string,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const started = performance.now();
  try {
    const { stdout, stderr } = await run(command, [...args], {
      cwd,
      env: npmFreeEnv(env),
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr, ms: performance.now() - started };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof failed.code !== 'number') throw error;
    return {
      code: failed.code,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? '',
      ms: performance.now() - started,
    };
  }
}

/** A command running in the background. */
export interface RunningCommand {
  readonly child: ChildProcess;
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first line of `stream` (stdout unless given) matching `pattern`; rejects
   * after `timeoutMs` (30 s unless given) or once the process has exited without one.
   */
  waitForLine(
    pattern: RegExp,
    options?: { stream?: 'stdout' | 'stderr'; timeoutMs?: number },
  ): Promise<string>;
  /** Sends `signal` (to this process only) unless it has exited, and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts `command` in `cwd` in the background, with npm's variables left out as in {@link runIn}. */
export function startIn(
  cwd: string,
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
): RunningCommand {
  const child = spawn(command, [...args], {
    cwd,
    env: npmFreeEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  // Set at 'close', once both streams have ended: at 'exit' the last output may still be coming.
  let closed = false;
  const listeners = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const listener of [...listeners]) listener();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
    (resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        closed = true;
        for (const listener of [...listeners]) listener();
        resolve({ code, signal });
      });
    },
  );
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLine(pattern, { stream = 'stdout', timeoutMs = 30_000 } = {}) {
      return new Promise((resolve, reject) => {
        const fail = (why: string) =>
          reject(
            new Error(
              `${why}: no ${stream} line matching ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`,
            ),
          );
        const timer = setTimeout(() => {
          listeners.delete(check);
          fail(`${timeoutMs} ms passed`);
        }, timeoutMs);
        function check(): void {
          const text = stream === 'stdout' ? stdout : stderr;
          const line = text.split('\n').find((candidate) => pattern.test(candidate));
          if (line === undefined && !closed) return;
          clearTimeout(timer);
          listeners.delete(check);
          if (line === undefined) fail(`exited (${child.exitCode ?? child.signalCode})`);
          else resolve(line);
        }
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

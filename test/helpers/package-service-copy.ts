/**
 * `osls package` of this repository's demo service in a copy of it, offline (dummy credentials).
 * The plugin writes its handler files into `<service>/.serverless-celery/` and serverless-esbuild
 * empties and fills `<service>/.esbuild/`: two packagings of one folder at once (two brokers, or
 * another test packaging the repository) would bundle each other's files. A copy of what the
 * packaging reads, with `node_modules` linked to this repository's, has folders of its own; it
 * also freezes the sources at the moment of the copy.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';
import { type PackagedService, readPackagedService } from './packaged-service.js';

const run = promisify(execFile);

/** What `osls package` reads of the demo service: its file, the app and library, fragments. */
const SERVICE_FILES = [
  'serverless.yml',
  'package.json',
  'tsconfig.json',
  'src',
  'functions',
  'infra',
];

/**
 * How long `osls package` may run (10 to 25 s here, two at once). It once never exited after an
 * esbuild error (serverless-esbuild's build contexts, see `skipRebuild` in bundling.ts): the
 * timeout ends such a run with a message saying so.
 */
const PACKAGE_TIMEOUT_MS = 90_000;

/** Options of {@link packageServiceCopy}. */
export interface PackageServiceCopyOptions {
  /** `--param=name=value` of each entry. @defaultValue none */
  readonly params?: Readonly<Record<string, string>>;
  /** @defaultValue `dev` */
  readonly stage?: string;
  /**
   * The `service` of serverless.yml, for the function names' prefix.
   *
   * @defaultValue `serverless-celery`
   */
  readonly service?: string;
  /** Changes the copy before it is packaged (a test's broken file). */
  readonly edit?: (serviceDir: string) => Promise<void>;
}

/** A service packaged from a copy: the template and zips, and what osls printed. */
export interface PackagedCopy extends PackagedService {
  /** osls' stdout and stderr. */
  readonly output: string;
  /** Wall time of `osls package`, ms. */
  readonly ms: number;
}

/**
 * Copies the demo service into `<into>/service` and packages it into `<into>/package`.
 *
 * @param into - an empty folder the caller removes afterwards
 * @throws Error with osls' output when the packaging fails or outlasts {@link PACKAGE_TIMEOUT_MS}
 */
export async function packageServiceCopy(
  into: string,
  options: PackageServiceCopyOptions = {},
): Promise<PackagedCopy> {
  const stage = options.stage ?? 'dev';
  const serviceDir = path.join(into, 'service');
  const packageDir = path.join(into, 'package');
  await mkdir(serviceDir, { recursive: true });
  for (const name of SERVICE_FILES) {
    await cp(path.join(ROOT, name), path.join(serviceDir, name), { recursive: true });
  }
  await symlink(path.join(ROOT, 'node_modules'), path.join(serviceDir, 'node_modules'), 'dir');
  await options.edit?.(serviceDir);
  const args = ['package', '--stage', stage, '--package', packageDir];
  for (const [name, value] of Object.entries(options.params ?? {})) {
    args.push(`--param=${name}=${value}`);
  }
  const started = performance.now();
  let output: string;
  try {
    const { stdout, stderr } = await run(path.join(ROOT, 'node_modules', '.bin', 'osls'), args, {
      cwd: serviceDir,
      timeout: PACKAGE_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env, AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', FORCE_COLOR: '0' },
    });
    output = `${stdout}\n${stderr}`;
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string; killed?: boolean };
    const why = failed.killed ? `killed after ${PACKAGE_TIMEOUT_MS} ms` : failed.message;
    throw new Error(
      `osls ${args.join(' ')} failed in ${serviceDir}: ${why}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`,
      { cause: error },
    );
  }
  const ms = performance.now() - started;
  const prefix = `${options.service ?? 'serverless-celery'}-${stage}-`;
  return { ...(await readPackagedService(packageDir, prefix)), output, ms };
}

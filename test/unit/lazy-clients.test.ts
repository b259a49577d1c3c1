import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

/** The broker client packages a fresh process has loaded after importing `modules`. */
async function clientsLoadedBy(...modules: string[]): Promise<string[]> {
  const script = [
    "import { createRequire } from 'node:module';",
    ...modules.map((module) => `await import(${JSON.stringify(path.join(ROOT, module))});`),
    'const cache = Object.keys(createRequire(import.meta.url).cache);',
    "const loaded = (name) => cache.some((file) => file.includes('/node_modules/' + name + '/'));",
    "console.log(JSON.stringify(['ioredis', 'amqplib'].filter(loaded)));",
  ].join('\n');
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { cwd: ROOT },
  );
  return JSON.parse(stdout) as string[];
}

describe('broker clients load on first use', () => {
  it('loads neither client for the library, the Lambda factories or the CLI', async () => {
    expect(await clientsLoadedBy('src/index.ts', 'src/lambda/index.ts', 'src/cli/main.ts')).toEqual(
      [],
    );
  }, 30_000);
});

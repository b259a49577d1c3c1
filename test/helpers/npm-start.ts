/**
 * `npm start` (or any command that runs `serverless-celery dev`) as a child process of a test:
 * its output collected, waits on lines, Ctrl-C as a terminal sends it (SIGINT to the whole
 * process group), and a kill that also reaches serverless-offline, which `dev` runs in a
 * process group of its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** The repository root, where `npm start` runs. */
export const ROOT = path.resolve(import.meta.dirname, '../..');

/** Where `npm start` serves the HTTP API. */
export const HTTP = 'http://localhost:3000';

/** How the child ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running `npm start`. */
export class NpmStart {
  readonly exited: Promise<Exit>;
  readonly #child: ChildProcess;
  readonly #started = Date.now();
  #output = '';
  #exit: Exit | undefined;

  /**
   * Starts `npm start` with `env` over the test's environment.
   *
   * @param command - another command and its arguments, run the same way @defaultValue `npm start`
   */
  constructor(env: Record<string, string>, command: readonly string[] = ['npm', 'start']) {
    const [file = 'npm', ...args] = command;
    this.#child = spawn(file, args, {
      cwd: ROOT,
      // A group of its own, as a terminal's foreground job: `interrupt()` signals all of it.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      // LOG_FORMAT: the human lines these tests read; a pipe would otherwise get JSON.
      env: { LOG_FORMAT: 'text', ...process.env, ...env, FORCE_COLOR: '0' },
    });
    const append = (chunk: Buffer) => {
      this.#output += chunk.toString('utf8');
    };
    this.#child.stdout?.on('data', append);
    this.#child.stderr?.on('data', append);
    this.exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  /** Everything printed so far (stdout and stderr). */
  output(): string {
    return this.#output;
  }

  /** The output's lines that hold `text`. */
  lines(text: string): string[] {
    return this.#output.split('\n').filter((line) => line.includes(text));
  }

  /** Milliseconds since the child was started. */
  get elapsedMs(): number {
    return Date.now() - this.#started;
  }

  /**
   * Waits until the output matches `pattern`.
   *
   * @returns the match
   * @throws on timeout or when the child exits first, with the output's tail
   */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.#output.match(pattern);
      if (match) return match;
      if (this.#exit || Date.now() > deadline) {
        const why = this.#exit ? `npm start exited (${JSON.stringify(this.#exit)})` : 'timed out';
        throw new Error(`${why} waiting for ${pattern}:\n${this.#output.slice(-4000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Ctrl-C: SIGINT to the process group, as a terminal sends it. */
  interrupt(): void {
    this.#signalGroup(this.#child.pid, 'SIGINT');
  }

  /**
   * Kills everything at once: the `npm start` group and serverless-offline's group (its id is
   * printed as `[offline] process group <pid>`). For `afterAll`, whatever state the test left.
   */
  async kill(): Promise<void> {
    const offline = /\[offline\] process group (\d+)/.exec(this.#output)?.[1];
    if (!this.#exit) {
      this.#signalGroup(this.#child.pid, 'SIGKILL');
      await this.exited;
    }
    if (offline) this.#signalGroup(Number(offline), 'SIGKILL');
  }

  #signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // ESRCH: the group has exited already.
    }
  }
}

/**
 * POSTs JSON to the local HTTP API; returns the status and the parsed answer.
 *
 * @param base - where the API listens @defaultValue `npm start`'s {@link HTTP}
 */
export async function postJson(
  route: string,
  body: unknown,
  base = HTTP,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** An event as `GET /events/{id}` shows it. */
export interface EventState {
  readonly id: string;
  readonly status: 'pending' | 'saved';
  readonly attempts: number;
  readonly receivedAt: string;
  readonly savedAt: string | null;
}

/** `GET /events/{id}` (of the API at `base`), or null for a 404. */
export async function getEvent(id: string, base = HTTP): Promise<EventState | null> {
  const response = await fetch(`${base}/events/${encodeURIComponent(id)}`);
  if (response.status === 404) return null;
  return (await response.json()) as EventState;
}

/** Polls `check` every 200 ms until it returns a value other than undefined, or fails. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index] as T);
      }
    }),
  );
  return results;
}

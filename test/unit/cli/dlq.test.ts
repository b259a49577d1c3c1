import { describe, expect, it } from 'vitest';
import type { DeadLetterEntry, DeadLetterFilter } from '../../../src/brokers/broker.js';
import { CHUNK } from '../../../src/cli/commands/dlq.js';
import { main } from '../../../src/cli/main.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { testContext } from '../../helpers/cli.js';
import { type FakeBroker, fakeBroker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });
/** A broker named, so that no note about the default one is written. */
const ENV = { BROKER_URL: 'redis://127.0.0.1:6379/4' };
const HEADING = 'broker: Redis 127.0.0.1:6379 db 4';

function entry(index: number, overrides: Partial<DeadLetterEntry> = {}): DeadLetterEntry {
  return {
    queue: 'jobs',
    reason: 'excluded',
    detail: 'failed with an excluded error',
    task: 'app.fail',
    id: `id-${index}`,
    retries: 0,
    errorType: 'TypeError',
    errorMessage: 'the payload has no body',
    at: new Date(Date.UTC(2025, 0, 1, 0, 0, index)).toISOString(),
    raw: `{"n": ${index}}`,
    ...overrides,
  };
}

/** A broker holding dead letters (oldest first), recording every replay and purge call. */
function dlqBroker(initial: DeadLetterEntry[]): FakeBroker & {
  readonly store: DeadLetterEntry[];
  readonly calls: { op: string; filter: DeadLetterFilter | undefined }[];
} {
  const store = [...initial];
  const calls: { op: string; filter: DeadLetterFilter | undefined }[] = [];
  const take = (op: string, filter: DeadLetterFilter | undefined) => {
    calls.push({ op, filter });
    let taken = 0;
    for (let index = 0; index < store.length; ) {
      const item = store[index] as DeadLetterEntry;
      const wanted = filter?.task === undefined || item.task === filter.task;
      if (wanted && (filter?.limit === undefined || taken < filter.limit)) {
        store.splice(index, 1);
        taken++;
      } else index++;
    }
    return taken;
  };
  return Object.assign(fakeBroker(), {
    store,
    calls,
    async stats(queue: string) {
      return { queue, ready: 0, unacked: 0, delayed: 0, deadLettered: store.length };
    },
    async deadLetters(_queue: string, limit: number) {
      // Redis order: newest first.
      return [...store].reverse().slice(0, limit);
    },
    async replayDeadLetters(_queue: string, filter?: DeadLetterFilter) {
      return take('replay', filter);
    },
    async purgeDeadLetters(_queue: string, filter?: DeadLetterFilter) {
      return take('purge', filter);
    },
  });
}

describe('dlq list', () => {
  it('shows the newest entries first, at most --limit, and says how many there are', async () => {
    // Prepare
    const broker = dlqBroker([entry(1), entry(2), entry(3)]);
    const context = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    const code = await main(['dlq', 'list', '--limit', '2'], context);

    // Assess
    expect(code).toBe(0);
    const lines = context.out().trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(HEADING);
    expect(lines[2]).toMatch(
      /^2025-01-01T00:00:03\.000Z\s+jobs\s+excluded\s+app\.fail\s+id-3\s+0\s+TypeError: the payload has no body$/,
    );
    expect(lines[3]).toContain('id-2');
    expect(context.err()).toContain('2 shown of 3 dead letter(s) (the newest of each queue)');
  });

  it('filters by task and prints JSON for scripts', async () => {
    // Prepare
    const broker = dlqBroker([entry(1), entry(2, { task: 'app.add' }), entry(3)]);
    const context = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    await main(['dlq', 'list', '--task', 'app.add', '--json'], context);

    // Assess
    expect(JSON.parse(context.out())).toEqual({
      broker: {
        kind: 'redis',
        host: '127.0.0.1',
        port: 6379,
        db: 4,
        tls: false,
        source: 'BROKER_URL',
      },
      entries: [entry(2, { task: 'app.add' })],
    });
  });

  it('says so when there is nothing', async () => {
    // Prepare
    const context = testContext({ env: ENV, registry: app.registry, broker: dlqBroker([]) });

    // Act
    const code = await main(['dlq', 'list'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toBe('no dead letters in jobs on Redis 127.0.0.1:6379 db 4\n');
  });
});

describe('dlq show', () => {
  it('prints one entry in full, raw message included', async () => {
    // Prepare
    const context = testContext({
      env: ENV,
      registry: app.registry,
      broker: dlqBroker([entry(1), entry(2)]),
    });

    // Act
    const code = await main(['dlq', 'show', 'id-1'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toContain(`broker:           ${HEADING.slice(8)}\n`);
    expect(context.out()).toContain('id:               id-1\n');
    expect(context.out()).toContain('raw message:\n{\n  "n": 1\n}\n');
  });

  it('exits 1 naming the queues searched when no entry has the id', async () => {
    // Prepare
    const context = testContext({
      env: ENV,
      registry: app.registry,
      broker: dlqBroker([entry(1)]),
    });

    // Act
    const code = await main(['dlq', 'show', 'id-9'], context);

    // Assess
    expect(code).toBe(1);
    expect(context.err()).toMatch(/^error: no dead letter with id id-9 in jobs/);
  });
});

describe('dlq replay', () => {
  it('replays every entry and prints how many', async () => {
    // Prepare
    const broker = dlqBroker([entry(1), entry(2)]);
    const context = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    const code = await main(['dlq', 'replay'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toBe('replayed 2 dead letter(s) to jobs\n');
    expect(broker.calls).toEqual([{ op: 'replay', filter: { limit: 2 } }]);
    expect(context.err()).toBe('');
  });

  it('replays a large store in chunks, never more than was there, with progress on stderr', async () => {
    // Prepare
    const total = CHUNK * 2 + 10;
    const broker = dlqBroker(Array.from({ length: total }, (_, index) => entry(index)));
    const context = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    await main(['dlq', 'replay', '--task', 'app.fail'], context);

    // Assess
    expect(broker.calls.map((call) => call.filter)).toEqual([
      { limit: CHUNK, task: 'app.fail' },
      { limit: CHUNK, task: 'app.fail' },
      { limit: 10, task: 'app.fail' },
    ]);
    expect(context.out()).toBe(`replayed ${total} dead letter(s) to jobs\n`);
    expect(context.err()).toBe(
      `replaying jobs: ${CHUNK}/${total}\nreplaying jobs: ${CHUNK * 2}/${total}\nreplaying jobs: ${total}/${total}\n`,
    );
  });

  it('honours --limit, oldest first', async () => {
    // Prepare
    const broker = dlqBroker([entry(1), entry(2, { task: 'app.add' }), entry(3), entry(4)]);
    const limited = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    await main(['dlq', 'replay', '--limit', '2'], limited);

    // Assess
    expect(limited.out()).toBe('replayed 2 dead letter(s) to jobs\n');
    expect(broker.store.map((item) => item.id)).toEqual(['id-3', 'id-4']);
  });
});

describe('dlq purge', () => {
  it('refuses without --yes when standard input is not a terminal, before touching the broker', async () => {
    // Prepare
    const broker = dlqBroker([entry(1)]);
    const context = testContext({ env: ENV, registry: app.registry, broker, stdinIsTTY: false });

    // Act
    const code = await main(['dlq', 'purge'], context);

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toBe(
      'error: refusing to purge without --yes: standard input is not a terminal\n',
    );
    expect(broker.store).toHaveLength(1);
  });

  it.each([
    ['n', 1, 1],
    ['', 1, 1],
    ['y', 0, 0],
    ['yes', 0, 0],
  ])('on a terminal asks first; answer %j exits %i leaving %i', async (answer, code, left) => {
    // Prepare
    const broker = dlqBroker([entry(1)]);
    const context = testContext({
      env: ENV,
      registry: app.registry,
      broker,
      stdinIsTTY: true,
      answers: [answer],
    });

    // Act
    const exitCode = await main(['dlq', 'purge'], context);

    // Assess
    expect(exitCode).toBe(code);
    expect(context.questions).toEqual(['Delete the dead letters (1 in jobs)? [y/N] ']);
    expect(broker.store).toHaveLength(left);
  });

  it('purges everything in one call with --yes, and asks nothing', async () => {
    // Prepare
    const broker = dlqBroker([entry(1), entry(2)]);
    const context = testContext({ env: ENV, registry: app.registry, broker });

    // Act
    const code = await main(['dlq', 'purge', '--yes'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toBe('purged 2 dead letter(s) of jobs\n');
    expect(broker.calls).toEqual([{ op: 'purge', filter: undefined }]);
    expect(context.questions).toEqual([]);
  });

  it('purges only one task, in chunks, and says what it will delete', async () => {
    // Prepare
    const broker = dlqBroker([
      entry(1, { task: 'app.add' }),
      entry(2),
      entry(3, { task: 'app.add' }),
    ]);
    const context = testContext({
      env: ENV,
      registry: app.registry,
      broker,
      stdinIsTTY: true,
      answers: ['y'],
    });

    // Act
    await main(['dlq', 'purge', '--task', 'app.add'], context);

    // Assess
    expect(context.questions).toEqual([
      'Delete the dead letters of task app.add among 3 in jobs? [y/N] ',
    ]);
    expect(broker.calls).toEqual([{ op: 'purge', filter: { limit: 3, task: 'app.add' } }]);
    expect(context.out()).toBe('purged 2 dead letter(s) of jobs\n');
    expect(broker.store.map((item) => item.id)).toEqual(['id-2']);
  });

  it('has nothing to ask when the stores are empty', async () => {
    // Prepare
    const context = testContext({
      env: ENV,
      registry: app.registry,
      broker: dlqBroker([]),
      stdinIsTTY: true,
    });

    // Act
    const code = await main(['dlq', 'purge'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toBe('nothing to purge in jobs\n');
    expect(context.questions).toEqual([]);
  });
});

import { describe, expect, it } from 'vitest';
import type { CliContext } from '../../../src/cli/context.js';
import { main } from '../../../src/cli/main.js';
import { BrokerError } from '../../../src/core/errors.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { type TestContext, type TestContextOptions, testContext } from '../../helpers/cli.js';
import { deliveryOf, type FakeBroker, fakeBroker, inProcessInvoker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });

/** A context that sends SIGTERM once `lines` lines were printed on stdout. */
function stoppingAfter(lines: number, options: TestContextOptions): TestContext {
  const context = testContext(options);
  const stdout: CliContext['stdout'] = (text) => {
    context.stdout(text);
    if (context.out().split('\n').length - 1 === lines) context.shutdown('SIGTERM');
  };
  return { ...context, stdout };
}

/** A fake broker whose empty receives wait a little, as a real one does, instead of spinning. */
function waitingBroker(options: Parameters<typeof fakeBroker>[0] = {}): FakeBroker {
  const broker = fakeBroker(options);
  const receive = broker.receive.bind(broker);
  return Object.assign(broker, {
    async receive(queue: string, receiveOptions: { max: number; waitMs: number }) {
      const batch = await receive(queue, receiveOptions);
      if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      return batch;
    },
  });
}

function twoMessages(): { broker: FakeBroker; ids: [string, string] } {
  const ok = app.add.createMessage({ kwargs: { x: 1, y: 2 } });
  const bad = app.fail.createMessage();
  return {
    broker: waitingBroker({ batches: [[deliveryOf(ok), deliveryOf(bad)]] }),
    ids: [ok.id, bad.id],
  };
}

describe('worker --invoke local', () => {
  it('prints a line per settled message and, on SIGTERM, settles what it holds and exits 0', async () => {
    // Prepare
    const { broker, ids } = twoMessages();
    const context = stoppingAfter(2, { registry: app.registry, broker });

    // Act
    const code = await main(['worker', '--concurrency', '5'], context);

    // Assess
    expect(code).toBe(0);
    const lines = context.out().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  app\\.add\\[${ids[0]}\\]  retries 0/2  succeeded in \\d+ ms$`,
      ),
    );
    expect(lines[1]).toMatch(
      new RegExp(
        `app\\.fail\\[${ids[1]}\\]  retries 0/3  dead-lettered: excluded \\(TypeError: the payload has no body\\)`,
      ),
    );
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual(['done', 'dead-letter']);
    expect(context.err()).toContain(
      'worker: consuming jobs on redis://127.0.0.1:6379/0, invoke local, concurrency 5 (Ctrl-C to stop)',
    );
    expect(context.err()).toContain(
      'worker: SIGTERM: taking no more messages, settling those in hand\nworker: stopped\n',
    );
    expect(broker.isClosed).toBe(true);
  });

  it('exits 69 at start when the broker is down, instead of retrying for ever', async () => {
    // Prepare
    const broker = fakeBroker({
      failWith: new BrokerError(
        'Redis at 127.0.0.1:6379/0: inspect jobs failed: connection refused',
      ),
    });
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(['worker'], context);

    // Assess
    expect(code).toBe(69);
    expect(context.err()).toContain('Start one: redis-server');
  });

  it('warns about queues the app does not declare', async () => {
    // Prepare
    const context = stoppingAfter(0, { registry: app.registry, broker: waitingBroker() });
    const stop = setTimeout(() => context.shutdown(), 50);

    // Act
    const code = await main(['worker', '--queues', 'jobs,typo'], context);
    clearTimeout(stop);

    // Assess
    expect(code).toBe(0);
    expect(context.err()).toContain('warning: queue typo is not declared by the app test-app');
  });
});

describe('worker --invoke lambda', () => {
  it("invokes each task's function under the prefix, at the endpoint given", async () => {
    // Prepare
    const { broker } = twoMessages();
    const invoker = inProcessInvoker(app.registry, { prefix: 'svc-dev-' });
    const context = stoppingAfter(2, {
      registry: app.registry,
      broker,
      env: { FUNCTION_PREFIX: 'svc-dev-', LAMBDA_ENDPOINT: 'http://127.0.0.1:9' },
      lambdaClient: async () => invoker,
    });

    // Act
    const code = await main(
      ['worker', '--invoke', 'lambda', '--lambda-endpoint', 'http://127.0.0.1:3002'],
      context,
    );

    // Assess
    expect(code).toBe(0);
    expect(context.lambdaEndpoints).toEqual(['http://127.0.0.1:3002']);
    expect(invoker.calls.map((call) => call.functionName).sort()).toEqual([
      'svc-dev-task-app-add',
      'svc-dev-task-app-fail',
    ]);
    expect(context.out()).toMatch(/app\.add\[.*succeeded/);
    expect(context.out()).toMatch(/app\.fail\[.*dead-lettered: excluded/);
  });

  it('warns that function names have no prefix when neither a prefix nor an endpoint is set', async () => {
    // Prepare
    const { broker } = twoMessages();
    const context = stoppingAfter(2, {
      registry: app.registry,
      broker,
      lambdaClient: async () => inProcessInvoker(app.registry, { prefix: '' }),
    });

    // Act
    const code = await main(['worker', '--invoke', 'lambda'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.err()).toContain('warning: no function prefix: invoking task-…');
  });

  it('reports a function that cannot be invoked as a re-queued message, not a crash', async () => {
    // Prepare
    const { broker } = twoMessages();
    const context = stoppingAfter(2, {
      registry: app.registry,
      broker,
      lambdaClient: async () => inProcessInvoker(app.registry, { prefix: 'other-' }),
    });

    // Act
    const code = await main(['worker', '--invoke', 'lambda', '--function-prefix', 'svc-'], context);

    // Assess
    expect(code).toBe(0);
    expect(context.out()).toMatch(/could not be run \(attempt 1\), re-queued \(.*svc-task-app-add/);
    expect(broker.settled().map((item) => item.settlement.kind)).toEqual([
      'retry-later',
      'retry-later',
    ]);
  });
});

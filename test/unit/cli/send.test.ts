import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { createCliApp } from '../../fixtures-app/cli-app.js';
import { testContext } from '../../helpers/cli.js';
import { fakeBroker } from '../../helpers/lambda.js';

const app = createCliApp({ queue: 'jobs', prefix: 'app' });

describe('send: a task another app implements', () => {
  it('publishes an undeclared name to --queue unchecked and says so on stderr', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(
      ['send', 'wf.add', '--args', '[1, 2]', '--queue', 'py_queue', '--countdown', '5'],
      context,
    );

    // Assess
    expect(code).toBe(0);
    const [message] = broker.published;
    expect(message).toMatchObject({
      task: 'wf.add',
      args: [1, 2],
      kwargs: {},
      routingKey: 'py_queue',
      embed: { callbacks: null, errbacks: null, chain: null, chord: null },
    });
    expect(message?.eta).not.toBeNull();
    expect(context.out()).toBe(`${message?.id}\n`);
    expect(context.err()).toContain(
      'warning: wf.add is not a task of test-app; sent unchecked to py_queue\n',
    );
  });

  it('still refuses arguments that are not plain JSON-sized for an undeclared name', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });
    const big = JSON.stringify(['x'.repeat(70_000)]);

    // Act
    const code = await main(['send', 'wf.add', '--args', big, '--queue', 'py_queue'], context);

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toMatch(/over the limit of 65536 bytes/);
    expect(broker.published).toEqual([]);
  });

  it('keeps exit 2 for an undeclared name without --queue, and hints at --queue', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(['send', 'wf.add', '--args', '[1, 2]'], context);

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toMatch(/unknown task wf\.add: .*give --queue/);
    expect(broker.published).toEqual([]);
  });

  it('checks a declared name against its schema even when --queue is given', async () => {
    // Prepare
    const broker = fakeBroker();
    const context = testContext({ registry: app.registry, broker });

    // Act
    const code = await main(
      ['send', 'app.add', '--kwargs', '{"x": "one"}', '--queue', 'jobs'],
      context,
    );

    // Assess
    expect(code).toBe(2);
    expect(context.err()).toMatch(/invalid arguments for task app\.add/);
    expect(broker.published).toEqual([]);
  });
});

import type { InvokeCommand, InvokeCommandOutput } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { createRegistry } from '../../../src/core/registry.js';
import { defineTask } from '../../../src/core/task.js';
import type { TaskOutcome } from '../../../src/core/task-outcome.js';
import { decodeDelivery, toRawDelivery } from '../../../src/core/wire.js';
import {
  InvokeError,
  type LambdaInvoker,
  lambdaExecutor,
} from '../../../src/lambda/lambda-executor.js';
import type { TaskInvocation } from '../../../src/lambda/task-handler.js';
import { ThrottledError } from '../../../src/worker/executor.js';
import { expectDecoded } from '../../helpers/decode.js';
import { inProcessInvoker, lambdaPayload, payloadText, SUCCEEDED } from '../../helpers/lambda.js';

const work = defineTask({ name: 'app.work', queue: 'q' }, () => 'done');
const registry = createRegistry({ tasks: [work], queues: [{ name: 'q' }] });
const functionName = (task: string) => `svc-dev-${task}`;

type Response = Pick<InvokeCommandOutput, 'FunctionError' | 'Payload' | 'StatusCode'>;

/** A Lambda client that answers `respond` and keeps the commands it was sent. */
function fakeClient(respond: (command: InvokeCommand) => Response | Promise<Response>) {
  const sent: InvokeCommand[] = [];
  const client: LambdaInvoker = {
    async send(command) {
      sent.push(command);
      return respond(command);
    },
  };
  return { client, sent };
}

const answer = (body: unknown): Response => ({
  StatusCode: 200,
  Payload: lambdaPayload(typeof body === 'string' ? body : JSON.stringify(body)),
});

describe('lambdaExecutor', () => {
  it("invokes the task's function, RequestResponse, with the batch as raw deliveries", async () => {
    // Prepare
    const sent = [work.createMessage({ kwargs: { n: 1 } }), work.createMessage({ args: [2] })];
    const { client, sent: commands } = fakeClient(() =>
      answer({ outcomes: [SUCCEEDED, SUCCEEDED] }),
    );

    // Act
    await lambdaExecutor({ functionName, client }).execute('app.work', sent);

    // Assess
    expect(commands).toHaveLength(1);
    const [command] = commands as [InvokeCommand];
    expect(command.input).toMatchObject({
      FunctionName: 'svc-dev-app.work',
      InvocationType: 'RequestResponse',
    });
    const invocation = JSON.parse(payloadText(command)) as TaskInvocation;
    expect(invocation).toEqual({ messages: sent.map(toRawDelivery) });
    expect(invocation.messages.map((raw) => expectDecoded(decodeDelivery(raw)).id)).toEqual(
      sent.map((message) => message.id),
    );
  });

  it('returns the outcomes the function answered, in order', async () => {
    // Prepare
    const outcomes: TaskOutcome[] = [
      SUCCEEDED,
      { kind: 'not-due', dueAt: '2026-01-01T00:00:00.000Z' },
    ];
    const { client } = fakeClient(() => answer({ outcomes }));

    // Act
    const result = await lambdaExecutor({ functionName, client }).execute('app.work', [
      work.createMessage(),
      work.createMessage(),
    ]);

    // Assess
    expect(result).toEqual(outcomes);
  });

  it.each<[string, () => Response | Promise<Response>, RegExp]>([
    [
      'the function failed (FunctionError)',
      () => ({
        StatusCode: 200,
        FunctionError: 'Unhandled',
        Payload: lambdaPayload('{"errorType":"Runtime.ExitError","errorMessage":"exited"}'),
      }),
      /^svc-dev-app\.work failed \(Unhandled\): \{"errorType":"Runtime\.ExitError"/,
    ],
    [
      'the service failed (the client throws)',
      () => {
        const error = new Error('Internal error.');
        error.name = 'ServiceException';
        throw error;
      },
      /^invoking svc-dev-app\.work failed: ServiceException: Internal error\.$/,
    ],
    ['the payload is not JSON', () => answer('Task timed out after 30.03 seconds'), /is not JSON/],
    ['the payload is empty', () => ({ StatusCode: 200 }), /is not JSON/],
    [
      'the function answered fewer outcomes than messages',
      () => answer({ outcomes: [SUCCEEDED] }),
      /instead of 2 outcomes/,
    ],
    [
      'the function answered no outcomes at all',
      () => answer({ saved: true }),
      /instead of 2 outcomes/,
    ],
    ['the function answered null', () => answer('null'), /instead of 2 outcomes/],
  ])('throws an InvokeError when %s', async (_, respond, says) => {
    // Prepare
    const { client } = fakeClient(respond);
    const executor = lambdaExecutor({ functionName, client });

    // Act
    const executed = executor.execute('app.work', [work.createMessage(), work.createMessage()]);

    // Assess
    await expect(executed).rejects.toThrow(InvokeError);
    await expect(executed).rejects.toThrow(says);
  });

  it('throws a ThrottledError, which the worker waits on, when the invoke is throttled', async () => {
    // Prepare
    const throttled = Object.assign(new Error('Rate Exceeded.'), {
      name: 'TooManyRequestsException',
    });
    const { client } = fakeClient(() => {
      throw throttled;
    });

    // Act
    const executed = lambdaExecutor({ functionName, client }).execute('app.work', [
      work.createMessage(),
    ]);

    // Assess
    await expect(executed).rejects.toThrow(ThrottledError);
    await expect(executed).rejects.toMatchObject({
      message: 'invoking svc-dev-app.work failed: TooManyRequestsException: Rate Exceeded.',
      cause: throttled,
    });
  });

  it('keeps what the client threw as the cause', async () => {
    // Prepare
    const throttled = new Error('Rate Exceeded.');
    const { client } = fakeClient(() => {
      throw throttled;
    });

    // Act
    const executed = lambdaExecutor({ functionName, client }).execute('app.work', [
      work.createMessage(),
    ]);

    // Assess
    await expect(executed).rejects.toMatchObject({ name: 'InvokeError', cause: throttled });
  });

  it('runs a batch through a real task handler behind the in-process invoker', async () => {
    // Prepare
    const client = inProcessInvoker(registry, { prefix: '' });
    const sent = [work.createMessage(), work.createMessage()];

    // Act
    const outcomes = await lambdaExecutor({ functionName: () => 'task-app-work', client }).execute(
      'app.work',
      sent,
    );

    // Assess
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(['succeeded', 'succeeded']);
    expect(client.calls.map((call) => call.ids)).toEqual([sent.map((message) => message.id)]);
  });
});

/**
 * Publishing from application code without HTTP: `publisher.delay(task, kwargs)` and
 * `publisher.applyAsync(task, call)`, typed by each task's schemas (Celery's `delay` and
 * `apply_async`); `applyAsync(signature)` for a chain, group or chord; `sendTask(name, call)` for
 * tasks another app implements (Celery's `send_task`).
 */
import { randomUUID } from 'node:crypto';
import type { Broker } from '../brokers/broker.js';
import { applySignature, type ChordSize, needsResultBackend, routeFor } from '../core/canvas.js';
import { InvalidArgumentsError, InvalidConfigError } from '../core/errors.js';
import type { EventDispatcher } from '../core/event-dispatcher.js';
import { DEFAULT_MAX_BODY_BYTES, type JsonObject, type JsonValue } from '../core/json.js';
import type { TaskMessage } from '../core/message.js';
import type { Registry } from '../core/registry.js';
import { celeryOptions, type SignatureDict, signatureOptionIssues } from '../core/signature.js';
import {
  type ArgsSchema,
  DEFAULT_QUEUE,
  isTask,
  type KwargsSchema,
  type Task,
  type TaskCallInput,
  type TaskCallOptions,
  type TaskSignatureInput,
} from '../core/task.js';
import { buildCallMessage } from '../core/task-call.js';
import { ambientTraceContext, type TraceContext } from '../core/trace-context.js';
import { sentAnnouncer } from './sent-events.js';
import { stampMessages } from './stamp.js';

/** A call of a task by name: Celery's `send_task` arguments. */
export interface SendTaskCall
  extends Pick<
    TaskCallOptions,
    'id' | 'countdown' | 'eta' | 'expires' | 'priority' | 'link' | 'linkError' | 'ignoreResult'
  > {
  readonly args?: readonly JsonValue[];
  readonly kwargs?: JsonObject;
  /** @defaultValue the declared task's queue, else `celery` */
  readonly queue?: string;
}

/** The slice of a result backend a publisher uses: storing chord sizes before a chord is sent. */
export interface ChordSizeStore {
  setChordSize(sizes: readonly ChordSize[]): Promise<void>;
}

/** Options of {@link createPublisher}. */
export interface PublisherOptions {
  /**
   * Where chord sizes are stored; without it, applying a chord throws (its callback could
   * never fire). @defaultValue none
   */
  readonly resultBackend?: ChordSizeStore | null;
  /**
   * The app's registry, to route signatures and `sendTask` names it declares to their queues.
   * @defaultValue none: a name without a `queue` goes to `celery`, as in a Celery app without routes
   */
  readonly registry?: Registry;
  /**
   * The trace context recorded on every message published (W3C `traceparent`, `X-Amzn-Trace-Id`,
   * Sentry's headers), read at each publish: give the active span's, e.g. from OpenTelemetry's
   * `propagation.inject`. @defaultValue {@link ambientTraceContext}: the running task's, else the
   * Lambda invocation's trace (`_X_AMZN_TRACE_ID`), else none
   */
  readonly traceContext?: () => TraceContext;
  /**
   * Where `task-sent` events go (Celery's `task_send_sent_event`), one per published message,
   * once the broker has them. A failed send is logged (once per burst) and never fails the
   * publish. Give it the producer's node name, as Celery's clients send as `gen<pid>@<host>`:
   * `createEventDispatcher(url, { hostname: DEFAULT_ORIGIN })`. @defaultValue none: no event
   */
  readonly events?: EventDispatcher | null;
  /** Where a failed `task-sent` is reported. @defaultValue console */
  readonly logger?: { warn(message: string): void };
}

/** Publishes calls of declared tasks, canvases, and tasks by name. */
export interface Publisher {
  /**
   * Publishes a call with kwargs only. Resolves to the task id.
   *
   * @throws InvalidArgumentsError, PayloadTooLargeError before anything is sent
   * @throws BrokerError when the broker is unreachable (nothing was published)
   */
  delay<K extends KwargsSchema, A extends ArgsSchema>(
    task: Task<K, A>,
    kwargs?: TaskCallInput<K, A>['kwargs'],
  ): Promise<string>;
  /** Publishes a call with args, kwargs and options (countdown, eta, expires, priority, link…). */
  applyAsync<K extends KwargsSchema, A extends ArgsSchema>(
    task: Task<K, A>,
    call?: TaskCallInput<K, A>,
  ): Promise<string>;
  /**
   * Applies a signature or canvas (`chain`, `group`, `chord`), Celery's `sig.apply_async(args,
   * kwargs, **options)`: `call.args` are prepended unless it is immutable, options override.
   * Resolves to the id a result waits on (the last chain step, the group, the chord body).
   *
   * @throws InvalidConfigError for a chord when the publisher has no result backend
   * @throws InvalidArgumentsError for a malformed signature or bad options
   * @example
   * await publisher.applyAsync(chain(add.s({ args: [1, 2] }), add.s({ args: [3] })));
   */
  applyAsync(sig: SignatureDict, call?: TaskSignatureInput): Promise<string>;
  /**
   * Publishes a task by name, declared by this app or not (Celery's `send_task`): arguments are
   * checked to be plain JSON and under 64 KiB, not against any schema, unless the registry
   * declares the name (then it is that task's `createMessage`).
   *
   * @example
   * await publisher.sendTask('reports.tasks.build', { args: [42], queue: 'reports' });
   */
  sendTask(name: string, call?: SendTaskCall): Promise<string>;
}

/**
 * Creates a publisher on a broker.
 *
 * @example
 * const publisher = createPublisher(broker);
 * const id = await publisher.delay(saveEvent, { event_id: 'evt-42' });
 */
export function createPublisher(broker: Broker, options: PublisherOptions = {}): Publisher {
  const route = options.registry ? routeFor(options.registry) : () => DEFAULT_QUEUE;
  const traceContext = options.traceContext ?? (() => ambientTraceContext());
  const announce = sentAnnouncer(options.events, options.logger);
  const publish = async (messages: readonly TaskMessage[]) => {
    const stamped = stampMessages(messages, traceContext());
    await broker.publish(stamped);
    await announce(stamped);
  };

  const applyCanvas = async (sig: SignatureDict, call: TaskSignatureInput = {}) => {
    const { args = [], kwargs = {}, ...rest } = call;
    const issues = signatureOptionIssues(rest);
    if (issues.length > 0) throw new InvalidArgumentsError(sig.task, issues);
    const backend = options.resultBackend ?? null;
    if (backend === null && needsResultBackend(sig)) {
      throw new InvalidConfigError(`apply ${sig.task}`, [
        {
          path: 'resultBackend',
          message:
            'a chord needs a result backend to count its parts: createPublisher(broker, { resultBackend })',
        },
      ]);
    }
    const merged = { ...sig, options: { ...sig.options, ...celeryOptions(rest) } };
    const expansion = applySignature(merged, { args, kwargs, idSeed: randomUUID(), route });
    // Celery sets a chord's size before its last header message; before the first is simpler
    // and as safe (a part finishing early only reads the size).
    if (expansion.chordSizes.length > 0) await backend?.setChordSize(expansion.chordSizes);
    await publish(expansion.messages);
    return expansion.id;
  };

  const applyAsync = (async (target: Task | SignatureDict, call = {}) => {
    if (isTask(target)) {
      const message = target.createMessage(call as TaskCallInput<KwargsSchema, ArgsSchema>);
      await publish([message]);
      return message.id;
    }
    return applyCanvas(target, call as TaskSignatureInput);
  }) as Publisher['applyAsync'];

  const sendTask: Publisher['sendTask'] = async (name, call = {}) => {
    const found = options.registry?.lookup(name);
    const message =
      found?.kind === 'task'
        ? found.task.createMessage(call)
        : buildCallMessage(
            {
              name,
              queue: route(name),
              maxArgumentBytes: DEFAULT_MAX_BODY_BYTES,
              ignoreResult: false,
            },
            call,
            [],
            new Date(),
          );
    await publish([message]);
    return message.id;
  };

  return {
    applyAsync,
    delay: (task, kwargs) => applyAsync(task, kwargs === undefined ? {} : { kwargs }),
    sendTask,
  };
}

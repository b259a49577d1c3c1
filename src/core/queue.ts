/**
 * Queue declarations: the TypeScript side of Celery's `task_queues` (Sentry's `CELERY_QUEUES`).
 *
 * A queue's durability and arguments must equal what any Python peer declares for the same
 * queue: RabbitMQ refuses a second declaration that differs (`406 PRECONDITION_FAILED`) and the
 * refusal breaks whichever side declares second. The defaults are exactly Celery's: durable, not
 * auto-delete, no arguments.
 */
import * as z from 'zod/mini';

const argumentValueSchema = z.union([z.string(), z.number(), z.boolean()]);
const queueNameSchema = z.string().check(z.minLength(1), z.maxLength(255));

/** One declared queue, parsed strictly (a typo in an option is an error naming it). */
export const queueDeclarationSchema = z.pipe(
  z
    .strictObject({
      /** Queue name; also the routing key on the default exchange. */
      name: queueNameSchema,
      /** Survives a broker restart. Celery: true (Sentry set false on every queue). */
      durable: z._default(z.boolean(), true),
      /** Deleted when its last consumer goes. Celery: false. */
      autoDelete: z._default(z.boolean(), false),
      /** RabbitMQ `x-max-priority`: makes the queue order by priority, higher first. */
      maxPriority: z.optional(z.int().check(z.minimum(1), z.maximum(255))),
      /** Extra RabbitMQ queue arguments (`x-queue-type`, `x-delivery-limit`, …), as Python declares them. */
      arguments: z._default(z.record(z.string(), argumentValueSchema), {}),
      /** Where dead messages of this queue go. @defaultValue `<name>.dlq` */
      deadLetterQueue: z.optional(queueNameSchema),
    })
    .check(
      z.superRefine((queue, context) => {
        const declared = queue.arguments['x-max-priority'];
        if (
          queue.maxPriority !== undefined &&
          declared !== undefined &&
          declared !== queue.maxPriority
        ) {
          context.addIssue({
            code: 'custom',
            path: ['maxPriority'],
            message: `conflicts with arguments['x-max-priority'] = ${String(declared)}`,
          });
        }
      }),
    ),
  z.transform((queue) => ({
    ...queue,
    deadLetterQueue: queue.deadLetterQueue ?? `${queue.name}.dlq`,
  })),
);

/** What a queue declaration accepts. */
export type QueueDeclarationInput = z.input<typeof queueDeclarationSchema>;

/** A queue declaration after defaults. */
export type QueueDeclaration = z.output<typeof queueDeclarationSchema>;

/**
 * The RabbitMQ arguments a queue is declared with: its `arguments` plus `x-max-priority` from
 * `maxPriority`. Empty for a default queue, exactly as Celery declares it.
 */
export function queueArguments(queue: QueueDeclaration): Record<string, string | number | boolean> {
  return queue.maxPriority === undefined
    ? { ...queue.arguments }
    : { ...queue.arguments, 'x-max-priority': queue.maxPriority };
}

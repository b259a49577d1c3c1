/**
 * Answers Celery's remote control for a long-lived worker (`celery inspect ping`, `active`,
 * `registered`, Flower's worker page): listens on the worker's node of the mailbox and replies
 * to what is addressed to it. A request that expects no reply (`celery control …`) is ignored:
 * we carry out no control command. A failed reply is logged, never thrown: monitoring must not
 * stop a worker.
 */
import type { BrokerLogger } from '../brokers/broker.js';
import { toError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import {
  type ControlMailbox,
  controlReply,
  type InspectedWorker,
  isAddressedTo,
} from '../core/remote-control.js';
import type { ActiveTasks } from './active-tasks.js';

/** Options of {@link startRemoteControl}. */
export interface RemoteControlOptions {
  readonly mailbox: ControlMailbox;
  /** The node name it answers as (Celery's `-n`, the events' hostname). */
  readonly hostname: string;
  readonly registry: Registry;
  readonly active: ActiveTasks;
  readonly logger: BrokerLogger;
}

/**
 * Starts answering; resolves once listening.
 *
 * @throws BrokerError when the mailbox cannot listen
 */
export async function startRemoteControl(options: RemoteControlOptions): Promise<void> {
  const { mailbox, hostname, logger } = options;
  const worker: InspectedWorker = {
    hostname,
    pid: process.pid,
    active: () => options.active.list(),
    registered: () => options.registry.tasks.map((task) => task.name),
  };
  await mailbox.listen(hostname, (request) => {
    if (!request.replyTo || !isAddressedTo(request, hostname)) return;
    const reply = { [hostname]: controlReply(request, worker) };
    mailbox.reply(request.replyTo, request.ticket, reply).catch((error: unknown) => {
      logger.warn(`remote control: no reply to ${request.method}: ${toError(error).message}`);
    });
  });
}

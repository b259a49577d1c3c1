/**
 * What went wrong with an AMQP operation, read from what amqplib gives: the reply code on the
 * error (`code`, `classId`, `methodId`), or, where amqplib puts the server's close frame only in
 * the text, the code and reply text at their fixed place in that text. Never from digits or
 * words anywhere in a message: queue, exchange and vhost names are part of the server's text, and
 * a vhost named by a UUID holds `403` often enough to make a 404 look like a wrong password.
 */

/** The AMQP 0-9-1 reply codes we explain (RabbitMQ's names). */
export const AMQP_REPLY = {
  CONNECTION_FORCED: 320,
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
  NOT_ALLOWED: 530,
} as const;

/** The server's refusal: reply code and reply text (`NOT_FOUND - no queue 'x' in vhost 'y'`). */
export interface AmqpReply {
  readonly code: number;
  /** The reply text, when amqplib kept it. */
  readonly text?: string;
}

/**
 * amqplib's texts for a server close, each with the code in a fixed place:
 * `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "…"`,
 * `Channel closed by server: 406 (…) with message "…"`, `Connection closed: 320 (…) with message "…"`,
 * `Handshake terminated by server: 403 (…) with message "…"` (lib/format.js `closeMessage`).
 */
const CLOSE_TEXT =
  /^(?:Operation failed: \w+; |Channel closed by server: |Connection closed: |Handshake terminated by server: )(\d{3}) \([A-Z-]+\) with message "(.*)"$/s;

/** How amqplib's text of a refusal during the handshake (before connection.open) starts. */
const HANDSHAKE_REFUSED = 'Handshake terminated by server:';

/**
 * amqplib's text when the server answers connection.open with connection.close: the frame's
 * fields are dropped, but RabbitMQ closes connection.open only with 530 NOT_ALLOWED (no such
 * vhost, or no permission on it).
 */
const OPEN_REFUSED = /^Expected ConnectionOpenOk; got <ConnectionClose channel:0>$/;

/** The server's reply carried by an amqplib error, or undefined for anything else. */
export function amqpReplyOf(error: unknown): AmqpReply | undefined {
  if (!(error instanceof Error)) return undefined;
  const close = CLOSE_TEXT.exec(error.message);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'number') return { code, ...(close ? { text: close[2] } : {}) };
  if (close) return { code: Number(close[1]), text: close[2] as string };
  if (OPEN_REFUSED.test(error.message)) return { code: AMQP_REPLY.NOT_ALLOWED };
  return undefined;
}

/** True when `error` is the server's refusal with reply `code`. */
export function hasAmqpReply(error: unknown, code: number): boolean {
  return amqpReplyOf(error)?.code === code;
}

/**
 * True when the broker refused the credentials at the handshake (403 ACCESS_REFUSED, which
 * amqplib reports as `Handshake terminated by server: 403 …`): a wrong user name or password,
 * for instance one rotated in its secret. A 403 later on (a missing permission on one object) is
 * not one: reading the secret again would not help.
 */
export function isAmqpAuthFailure(error: unknown): boolean {
  return (
    hasAmqpReply(error, AMQP_REPLY.ACCESS_REFUSED) &&
    (error as Error).message.startsWith(HANDSHAKE_REFUSED)
  );
}

/** Node's socket error codes, and amqplib's own connect timeout (an Error without a code). */
const SOCKET_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused (is rabbitmq-server running?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  ETIMEDOUT: 'connection timed out',
};

/**
 * A sentence a person can act on, followed by the server's own reply (code and text) so that a
 * reader can still tell one refusal from another. Server texts name users, vhosts and queues,
 * never passwords.
 */
export function explainAmqpFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const reply = amqpReplyOf(error);
  if (reply) {
    const said = reply.text === undefined ? `reply ${reply.code}` : `${reply.code} ${reply.text}`;
    return `${explainReply(reply, message)} (server: ${said})`;
  }
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  const socket = typeof code === 'string' ? SOCKET_REASONS[code] : undefined;
  if (socket) return socket;
  // amqplib's connect timeout and DNS failures carry no `code`, only Node's wording.
  if (/^connect ETIMEDOUT\b/.test(message)) return 'connection timed out';
  if (/^getaddrinfo (ENOTFOUND|EAI_AGAIN)\b/.test(message)) return 'host not found';
  if (/^connect ECONNREFUSED\b/.test(message))
    return 'connection refused (is rabbitmq-server running?)';
  return message;
}

function explainReply(reply: AmqpReply, message: string): string {
  switch (reply.code) {
    case AMQP_REPLY.ACCESS_REFUSED:
      // Refused at the handshake: the credentials. Refused later: a permission on one object.
      return message.startsWith(HANDSHAKE_REFUSED)
        ? 'access refused (wrong user name or password)'
        : 'access refused (the user lacks a permission on this vhost)';
    case AMQP_REPLY.NOT_ALLOWED:
      // At connection.open it is the vhost; later, an operation the broker forbids.
      return OPEN_REFUSED.test(message)
        ? 'vhost does not exist or the user has no access to it'
        : 'not allowed by the broker';
    case AMQP_REPLY.NOT_FOUND:
      return 'not found';
    case AMQP_REPLY.PRECONDITION_FAILED:
      return 'refused: exists with other settings';
    case AMQP_REPLY.RESOURCE_LOCKED:
      return 'refused: in exclusive use by another connection';
    case AMQP_REPLY.CONNECTION_FORCED:
      return 'the broker closed the connection';
    default:
      return 'refused by the broker';
  }
}

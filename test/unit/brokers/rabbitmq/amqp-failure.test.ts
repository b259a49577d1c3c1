import { describe, expect, it } from 'vitest';
import {
  AMQP_REPLY,
  amqpReplyOf,
  explainAmqpFailure,
  hasAmqpReply,
  isAmqpAuthFailure,
} from '../../../../src/brokers/rabbitmq/amqp-failure.js';
import { explainDeclareError } from '../../../../src/brokers/rabbitmq/topology.js';

/**
 * Errors as amqplib 2.3.1 raised them against RabbitMQ 3.10.8, captured with names that hold the
 * digits of other reply codes (vhost `sc-cap-403-404-406-530`, queue `orders-403`, …).
 */
function amqplibError(
  message: string,
  fields: { code?: number; classId?: number; methodId?: number } = {},
): Error {
  return Object.assign(new Error(message), fields);
}

const VHOST = 'sc-cap-403-404-406-530';

const captured = {
  wrongPassword: amqplibError(
    'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."',
  ),
  openRefused: amqplibError('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'),
  queuePermission: amqplibError(
    `Operation failed: QueueDeclare; 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - access to queue 'q-404-declare' in vhost '${VHOST}' refused for user 'u403'"`,
    { code: 403, classId: 50, methodId: 10 },
  ),
  queueNotFound: amqplibError(
    `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue 'orders-403' in vhost '${VHOST}'"`,
    { code: 404, classId: 50, methodId: 10 },
  ),
  exchangeNotFound: amqplibError(
    `Operation failed: ExchangeDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'ex-530' in vhost '${VHOST}'"`,
    { code: 404, classId: 40, methodId: 10 },
  ),
  bindNotFound: amqplibError(
    `Operation failed: QueueBind; 404 (NOT-FOUND) with message "NOT_FOUND - no exchange 'missing-ex-403' in vhost '${VHOST}'"`,
    { code: 404, classId: 50, methodId: 20 },
  ),
  queueArguments: amqplibError(
    `Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q-406' in vhost '${VHOST}': received the value '10' of type 'byte' but current is none"`,
    { code: 406, classId: 50, methodId: 10 },
  ),
  exchangeType: amqplibError(
    `Operation failed: ExchangeDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'ex-403' in vhost '${VHOST}': received 'topic' but current is 'direct'"`,
    { code: 406, classId: 40, methodId: 10 },
  ),
  connectionNotAllowed: amqplibError(
    `Connection closed: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - attempt to reuse consumer tag 'tag-403'"`,
    { code: 530 },
  ),
};

describe('amqpReplyOf', () => {
  it.each([
    ['wrong password', captured.wrongPassword, 403],
    ['connection.open refused', captured.openRefused, 530],
    ['queue permission', captured.queuePermission, 403],
    ['queue not found', captured.queueNotFound, 404],
    ['exchange not found', captured.exchangeNotFound, 404],
    ['bind to a missing exchange', captured.bindNotFound, 404],
    ['queue arguments', captured.queueArguments, 406],
    ['exchange type', captured.exchangeType, 406],
    ['consumer tag reused', captured.connectionNotAllowed, 530],
  ])('reads the reply code of a %s from its place, not from the names', (_, error, code) => {
    expect(amqpReplyOf(error)?.code).toBe(code);
  });

  it('keeps the reply text amqplib put in its message', () => {
    expect(amqpReplyOf(captured.queueNotFound)).toEqual({
      code: 404,
      text: `NOT_FOUND - no queue 'orders-403' in vhost '${VHOST}'`,
    });
  });

  it.each([
    new Error('connect ECONNREFUSED 127.0.0.1:5672'),
    new Error("no queue 'orders-403' here: 404"),
    new Error('ACCESS_REFUSED in a name 403'),
    'a string thrown',
  ])('finds no reply in anything else: %s', (error) => {
    expect(amqpReplyOf(error)).toBeUndefined();
  });

  it('answers hasAmqpReply by code', () => {
    expect(hasAmqpReply(captured.queueNotFound, AMQP_REPLY.NOT_FOUND)).toBe(true);
    expect(hasAmqpReply(captured.queueNotFound, AMQP_REPLY.ACCESS_REFUSED)).toBe(false);
  });
});

describe('isAmqpAuthFailure', () => {
  it.each([
    ['a wrong password at the handshake', captured.wrongPassword, true],
    ['a missing permission on a queue (403 later on)', captured.queuePermission, false],
    ['connection.open refused (no such vhost)', captured.openRefused, false],
    ['a 404 in a vhost named with 403', captured.queueNotFound, false],
    ['a refused socket', new Error('connect ECONNREFUSED 127.0.0.1:5672'), false],
  ])('tells the refusal of the credentials apart: %s', (_, error, expected) => {
    expect(isAmqpAuthFailure(error)).toBe(expected);
  });
});

describe('explainAmqpFailure', () => {
  it.each([
    [
      captured.wrongPassword,
      /^access refused \(wrong user name or password\) \(server: 403 ACCESS_REFUSED - Login was refused/,
    ],
    [
      captured.openRefused,
      /^vhost does not exist or the user has no access to it \(server: reply 530\)$/,
    ],
    [
      captured.queuePermission,
      /^access refused \(the user lacks a permission on this vhost\) \(server: 403 ACCESS_REFUSED - access to queue 'q-404-declare'/,
    ],
    [
      captured.queueNotFound,
      /^not found \(server: 404 NOT_FOUND - no queue 'orders-403' in vhost 'sc-cap-403-404-406-530'\)$/,
    ],
    [captured.exchangeNotFound, /^not found \(server: 404 NOT_FOUND - no exchange 'ex-530'/],
    [
      captured.queueArguments,
      /^refused: exists with other settings \(server: 406 PRECONDITION_FAILED - inequivalent arg 'x-max-priority'/,
    ],
    [
      captured.connectionNotAllowed,
      /^not allowed by the broker \(server: 530 NOT_ALLOWED - attempt to reuse consumer tag 'tag-403'\)$/,
    ],
  ])('explains %s and keeps the server’s words', (error, explained) => {
    expect(explainAmqpFailure(error)).toMatch(explained);
  });

  it.each([
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5672'), { code: 'ECONNREFUSED' }),
      'connection refused (is rabbitmq-server running?)',
    ],
    [new Error('connect ETIMEDOUT'), 'connection timed out'],
    [
      Object.assign(new Error('getaddrinfo ENOTFOUND mq-403.example'), { code: 'ENOTFOUND' }),
      'host not found',
    ],
    [
      new Error('Channel ended, no reply will be forthcoming'),
      'Channel ended, no reply will be forthcoming',
    ],
  ])('explains socket failures by their code: %s', (error, explained) => {
    expect(explainAmqpFailure(error)).toBe(explained);
  });
});

describe('explainDeclareError', () => {
  it('explains a 406 with the server’s reason', () => {
    expect(explainDeclareError(captured.queueArguments, 'queue q-406')).toMatch(
      /^queue q-406 already exists on the broker with other settings \(inequivalent arg 'x-max-priority' for queue 'q-406'/,
    );
  });

  it.each([
    captured.queueNotFound,
    captured.queuePermission,
    captured.wrongPassword,
    amqplibError(
      `Operation failed: QueueDeclare; 404 (NOT-FOUND) with message "NOT_FOUND - no queue 'PRECONDITION_FAILED-406'"`,
      { code: 404 },
    ),
  ])('leaves every other reply alone, whatever the names hold: %s', (error) => {
    expect(explainDeclareError(error, 'queue x')).toBeNull();
  });
});

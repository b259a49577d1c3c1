/**
 * Opening an AMQP connection, with amqplib imported on the first one: a process that loads the
 * library without connecting to RabbitMQ (a CLI call on Redis, an app importing the package)
 * does not pay for loading amqplib, and a bundle built for RabbitMQ inlines it as before.
 */
import type { ChannelModel } from 'amqplib';

/** amqplib's `connect`, as the broker calls it. */
export type AmqpConnect = (
  url: string,
  socketOptions: { readonly noDelay: boolean; readonly timeout: number },
) => Promise<ChannelModel>;

/** amqplib's `connect`, loaded on the first call. */
export const amqplibConnect: AmqpConnect = async (url, socketOptions) =>
  (await import('amqplib')).connect(url, socketOptions);

/**
 * Which broker a command talks to, how it is named on screen (never with its password), and what
 * a person is told when it cannot be reached.
 */
import type { Broker } from '../brokers/broker.js';
import {
  brokerKindOf,
  DEFAULT_BROKER_URL,
  parseBrokerConfig,
  redactUrl,
} from '../config/broker-config.js';
import { brokerSecretArnOf } from '../config/broker-secret.js';
import { isRedisClusterUrl, singleNodeForm } from '../config/redis-url.js';
import { BrokerError, InvalidConfigError } from '../core/errors.js';
import type { LoadedApp } from './app-loader.js';
import type { CliContext } from './context.js';
import { AppConfigError, UnavailableError, UsageError } from './exit-codes.js';

/** Command that starts the local Redis the project's machines use. */
export const START_REDIS =
  'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no';
/** Command that starts the local RabbitMQ. */
export const START_RABBITMQ = 'rabbitmq-server -detached';

/** Where a command's broker URL came from. */
export const BROKER_SOURCES = ['--broker', 'BROKER_URL', 'default'] as const;
/** One of {@link BROKER_SOURCES}. */
export type BrokerSource = (typeof BROKER_SOURCES)[number];

/**
 * The broker a command read, as tables and `--json` name it: host, port and database or vhost,
 * never credentials.
 */
export type BrokerIdentity = {
  readonly host: string;
  readonly port: number;
  /** `rediss://` or `amqps://`. */
  readonly tls: boolean;
  readonly source: BrokerSource;
} & (
  | {
      readonly kind: 'redis';
      readonly db: number;
      /** A Redis Cluster URL; `host` and `port` are then its first seed node's. */
      readonly cluster?: true;
    }
  | { readonly kind: 'rabbitmq'; readonly vhost: string }
);

/** The broker a command uses. */
export interface BrokerChoice {
  /** The broker URL. */
  readonly url: string;
  /** How it is shown in messages: the URL without its password. */
  readonly label: string;
  /** How tables and `--json` name it. */
  readonly identity: BrokerIdentity;
  /** Opens it (nothing connects before the first operation). */
  open(): Broker;
}

/**
 * Picks the broker: `--broker`, else `BROKER_URL`, else the local Redis, and says so on standard
 * error when it is the local Redis by default (a `BROKER_URL` forgotten after a RabbitMQ run
 * would otherwise read the wrong broker silently). `BROKER_URL`'s broker is opened with the
 * credentials of `BROKER_SECRET_ARN` when it is set, as the deployed functions open it. An app's `runtime` is not asked: a URL can
 * always be named on screen (redacted), a runtime's broker cannot.
 *
 * @throws UsageError for a bad `--broker`; AppConfigError for a bad `BROKER_URL`
 */
export function chooseBroker(
  context: CliContext,
  app: LoadedApp,
  flag: string | undefined,
): BrokerChoice {
  const fromEnv = context.env.BROKER_URL;
  const url = flag ?? (fromEnv || DEFAULT_BROKER_URL);
  const source: BrokerSource = flag !== undefined ? '--broker' : fromEnv ? 'BROKER_URL' : 'default';
  // The deployed functions' secret works here too (an operator's `inspect` of a deployment).
  const secretArn = brokerSecretArnOf(url, context.env);
  const kind = brokerKindOf(url);
  let config: ReturnType<typeof parseBrokerConfig>;
  try {
    config = parseBrokerConfig(secretArn && kind ? { kind, url, secretArn } : url);
  } catch (error) {
    if (!(error instanceof InvalidConfigError)) throw error;
    const source = flag === undefined ? 'BROKER_URL' : '--broker';
    const Problem = flag === undefined ? AppConfigError : UsageError;
    throw new Problem(`${source}: ${error.issues.map((issue) => issue.message).join('; ')}`);
  }
  const logger = { warn: (message: string) => context.stderr(`warning: ${message}\n`) };
  if (source === 'default') {
    context.stderr(`note: no --broker and no BROKER_URL: using the local Redis ${url}\n`);
  }
  return {
    url,
    label: redactUrl(url),
    identity: identifyBroker(config.url, source),
    open: () => context.createBroker(config, { queues: app.registry.queues, logger }),
  };
}

/**
 * Host, port and database (Redis) or vhost (RabbitMQ) of a valid broker URL; the schemes' default
 * ports when it names none.
 */
export function identifyBroker(url: string, source: BrokerSource): BrokerIdentity {
  const parsed = new URL(singleNodeForm(url));
  const tls = parsed.protocol === 'rediss:' || parsed.protocol === 'amqps:';
  const host = parsed.hostname;
  if (parsed.protocol.startsWith('redis')) {
    const db = Number(parsed.pathname.replace(/^\//, '') || '0');
    const cluster = isRedisClusterUrl(url) ? { cluster: true as const } : {};
    return { kind: 'redis', host, port: Number(parsed.port || 6379), db, tls, source, ...cluster };
  }
  const vhost = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || '/';
  return {
    kind: 'rabbitmq',
    host,
    port: Number(parsed.port || (tls ? 5671 : 5672)),
    vhost,
    tls,
    source,
  };
}

/**
 * Runs `work` with the chosen broker and closes it afterwards. A {@link BrokerError} becomes one
 * line naming the broker (and how to start it when it refused the connection), exit 69.
 */
export async function withBroker<T>(
  choice: BrokerChoice,
  work: (broker: Broker) => Promise<T>,
): Promise<T> {
  const broker = choice.open();
  try {
    return await work(broker);
  } catch (error) {
    throw brokerProblem(choice, broker.kind, error);
  } finally {
    await broker.close().catch(() => {
      // Closing a broker that never connected (or already dropped) has nothing to report.
    });
  }
}

/** A broker failure as an {@link UnavailableError}; anything else is returned unchanged. */
export function brokerProblem(choice: BrokerChoice, kind: Broker['kind'], error: unknown): unknown {
  if (!(error instanceof BrokerError || (error as Error | null)?.name === 'BrokerError')) {
    return error;
  }
  // The broker's own message starts by naming its endpoint, which the label already does.
  const reason = (error as Error).message.replace(/^(?:Redis|RabbitMQ) at .*?: (?=\S)/, '');
  const hint = startHint(choice.url, kind, reason);
  return new UnavailableError(
    `broker ${choice.label} unavailable: ${reason}${hint ? `. Start one: ${hint}` : ''}`,
    { cause: error },
  );
}

/** The command that starts a local broker, when the connection was refused on this machine. */
export function startHint(url: string, kind: Broker['kind'], reason: string): string | null {
  if (!/connection refused|ECONNREFUSED/i.test(reason)) return null;
  const host = hostOf(url);
  if (host === null || !/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i.test(host)) return null;
  if (kind === 'rabbitmq') return START_RABBITMQ;
  const port = portOf(url);
  return port && port !== '6379'
    ? START_REDIS.replace('--port 6379', `--port ${port}`)
    : START_REDIS;
}

function hostOf(url: string): string | null {
  try {
    return new URL(url).hostname;
  } catch {
    return null;
  }
}

function portOf(url: string): string | null {
  try {
    return new URL(url).port || null;
  } catch {
    return null;
  }
}

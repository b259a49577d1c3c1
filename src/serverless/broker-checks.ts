/**
 * What the plugin reads from `custom.celery.broker` beyond its schema: the secret the functions
 * log in with, the vhost of the Amazon MQ event source, and whether the URL can be deployed.
 * Pure functions over the parsed settings; a URL given as an intrinsic function (known only to
 * CloudFormation) is taken as written and checked for nothing.
 *
 * Two kinds of check, at two moments:
 * - {@link brokerIssues}, when `custom.celery` is parsed (every command): settings that contradict
 *   each other, whatever the stage;
 * - {@link deploymentIssues}, at package time (`package`, `deploy`; never `offline` or
 *   `serverless-celery dev`): a URL no Lambda function can reach, on a stage that is not local.
 */
import { singleNodeForm, splitClusterUrl } from '../config/redis-url.js';
import type { FieldIssue } from '../core/errors.js';
import type { BrokerSettings } from './broker-schema.js';

/** Stages that may keep the local broker: `npm start`, `serverless-celery dev`, a first `package`. */
export const LOCAL_STAGES: readonly string[] = ['local', 'dev'];

/** What the runtime uses when `BROKER_URL` is unset, by broker kind. */
const LOCAL_DEFAULT_URLS = {
  redis: 'redis://127.0.0.1:6379/0',
  rabbitmq: 'amqp://127.0.0.1:5672/',
} as const;

/** Hosts only the machine itself answers on. */
const LOCAL_HOST = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])$/i;

/**
 * The secret the functions read the broker's credentials from (`BROKER_SECRET_ARN`): the
 * broker's own `secretArn`, else on RabbitMQ the event source's. Empty means none.
 */
export function brokerSecretArn(broker: BrokerSettings): unknown {
  const own = broker.secretArn;
  const given =
    own !== undefined && own !== ''
      ? own
      : broker.kind === 'rabbitmq'
        ? broker.amazonMq?.secretArn
        : undefined;
  return given === '' ? undefined : given;
}

/** The password of a URL written as a string, or undefined. */
export function urlPassword(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  try {
    // A cluster URL's host list is no WHATWG URL: its single-node form holds the credentials.
    const password = new URL(singleNodeForm(url)).password;
    return password === '' ? undefined : decodeURIComponent(password);
  } catch {
    // The schema checked the scheme only; a URL Node cannot parse has no password we can find.
    return undefined;
  }
}

/** `url` with its password as `***`, for messages. */
export function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** The vhost of an AMQP URL, as the RabbitMQ adapter reads it (no path: `/`). */
export function urlVirtualHost(url: string): string {
  const path = new URL(url).pathname.replace(/^\//, '');
  return path === '' ? '/' : decodeURIComponent(path);
}

/**
 * The `virtualHost` of the Amazon MQ event source: `amazonMq.virtualHost`, else the URL's;
 * undefined for the default vhost `/`, which the event source reads without being told.
 */
export function eventSourceVirtualHost(broker: BrokerSettings): string | undefined {
  if (broker.kind !== 'rabbitmq') return undefined;
  const given = broker.amazonMq?.virtualHost;
  const vhost =
    given !== undefined && given !== ''
      ? given
      : typeof broker.url === 'string'
        ? urlVirtualHost(broker.url)
        : '/';
  return vhost === '/' ? undefined : vhost;
}

/**
 * Settings of `broker` that contradict each other: an Amazon MQ ARN without its secret, a URL
 * carrying a password beside a secret, an event source vhost other than the URL's.
 *
 * @param path - where the broker sits (`custom.celery.broker`)
 */
export function brokerIssues(broker: BrokerSettings, path: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const amazonMq = broker.kind === 'rabbitmq' ? broker.amazonMq : undefined;
  if (amazonMq && amazonMq.arn !== '' && (amazonMq.secretArn ?? '') === '') {
    issues.push({
      path: `${path}.amazonMq.secretArn`,
      message: 'required with an arn: the secret {"username", "password"} of the broker',
    });
  }
  if (urlPassword(broker.url) !== undefined && brokerSecretArn(broker) !== undefined) {
    issues.push({
      path: `${path}.url`,
      message:
        `holds a password (${redactPassword(broker.url as string)}) while the functions read ` +
        `their credentials from ${secretField(broker, path)}: give the URL without them, or ` +
        'it lands in the template and .serverless/serverless-state.json',
    });
  }
  const virtualHost = amazonMq?.virtualHost ?? '';
  if (virtualHost !== '' && typeof broker.url === 'string') {
    const fromUrl = urlVirtualHost(broker.url);
    if (fromUrl !== virtualHost) {
      issues.push({
        path: `${path}.amazonMq.virtualHost`,
        message:
          `is ${JSON.stringify(virtualHost)} but the broker URL's vhost is ` +
          `${JSON.stringify(fromUrl)}: the event source would read queues the functions never ` +
          'publish to (leave virtualHost out: it follows the URL)',
      });
    }
  }
  return issues;
}

/** What packaging for `stage` would deploy wrong: errors refuse it, warnings are printed. */
export interface DeploymentIssues {
  readonly errors: FieldIssue[];
  readonly warnings: string[];
}

/**
 * What a deployment of `broker` to `stage` would get wrong: no URL, or the local default, on a
 * stage that is not local (every function would spend its life failing to connect); a password in
 * a plain URL (it lands in the template and the state file); no event source on RabbitMQ.
 *
 * @param path - where the broker sits (`custom.celery.broker`)
 */
export function deploymentIssues(
  broker: BrokerSettings,
  stage: string,
  path: string,
): DeploymentIssues {
  const errors: FieldIssue[] = [];
  const warnings: string[] = [];
  const local = LOCAL_STAGES.includes(stage);
  const fallback = LOCAL_DEFAULT_URLS[broker.kind];
  if (broker.url === undefined || isLocalUrl(broker.url)) {
    const what =
      broker.url === undefined ? `is not set (the runtime's default is ${fallback})` : 'is local';
    const scheme = broker.kind === 'redis' ? 'rediss' : 'amqps';
    const advice =
      'no Lambda function can reach it: give the URL of the deployed broker, e.g. ' +
      `url: \${param:brokerUrl} and --param="brokerUrl=${scheme}://…"`;
    if (local) warnings.push(`${path}.url ${what}: deployed, ${advice}`);
    else {
      errors.push({
        path: `${path}.url`,
        message:
          `${what}, and stage ${stage} is not one of ${LOCAL_STAGES.join(', ')}: ${advice} ` +
          '(its credentials in a secret: secretArn)',
      });
    }
  }
  if (!local && urlPassword(broker.url) !== undefined) {
    warnings.push(
      `${path}.url holds a password, which lands in the template and ` +
        `.serverless/serverless-state.json: give the URL without it and ${path}.secretArn`,
    );
  }
  if (broker.kind === 'rabbitmq' && (broker.amazonMq?.arn ?? '') === '') {
    warnings.push(
      `${path}.amazonMq.arn is not set, so the dispatcher has no event source and nothing ` +
        'consumes the RabbitMQ queues in AWS',
    );
  }
  return { errors, warnings };
}

/** Whether a URL written as a string points at this machine. */
function isLocalUrl(url: unknown): boolean {
  if (typeof url !== 'string') return false;
  try {
    const cluster = splitClusterUrl(url);
    const hosts = cluster ? cluster.nodes.map((node) => node.host) : [new URL(url).hostname];
    // WHATWG gives an IPv6 host in brackets, a cluster URL's list without.
    return hosts.some((host) => LOCAL_HOST.test(host.replace(/^([^[].*:.*)$/, '[$1]')));
  } catch {
    return false;
  }
}

/** The field the broker's secret comes from, for messages. */
function secretField(broker: BrokerSettings, path: string): string {
  const own = broker.secretArn;
  return own !== undefined && own !== '' ? `${path}.secretArn` : `${path}.amazonMq.secretArn`;
}

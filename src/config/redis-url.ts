/**
 * Redis Cluster URLs: `redis+cluster://[user:password@]host:port[,host:port…][/0][?query]`, and
 * `rediss+cluster://` for TLS (ElastiCache Serverless, cluster-mode ElastiCache). The hosts are
 * seed nodes: the client asks any of them for the slot map and finds the rest by itself.
 *
 * A list of hosts is not a URL WHATWG's parser takes (`h1:7000,h2:7001` is no port), so the
 * code that reads or edits a URL (credentials, database, endpoint text) sees a *single-node
 * form*, the first host with everything else as written, and the list is put back afterwards.
 */

/** The schemes of a Redis URL: `redis://`, `rediss://`, `redis+cluster://`, `rediss+cluster://`. */
export const REDIS_URL_PATTERN = /^rediss?(\+cluster)?:\/\//;

/** A Redis URL of any form, or nothing (a setting left empty). */
export const OPTIONAL_REDIS_URL_PATTERN = /^(rediss?(\+cluster)?:\/\/|$)/;

/** True for the TLS forms, `rediss://` and `rediss+cluster://`. */
export function isTlsRedisUrl(url: string): boolean {
  return /^rediss(\+cluster)?:\/\//.test(url);
}

/** What a URL that does not match {@link REDIS_URL_PATTERN} is told. */
export const REDIS_URL_SCHEMES =
  'must start with redis://, rediss://, redis+cluster:// or rediss+cluster://';

/** A seed node of a cluster URL. */
export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** The port a node listed without one is on. */
const DEFAULT_PORT = 6379;

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/([^/?#]*)([\s\S]*)$/i;

/** True for `redis+cluster://` and `rediss+cluster://` URLs. */
export function isRedisClusterUrl(url: string): boolean {
  return CLUSTER_URL.test(url);
}

/** A cluster URL taken apart: its seed nodes, and its single-node form (see the file's note). */
export interface ClusterUrlParts {
  readonly nodes: readonly RedisNode[];
  /** `redis://` or `rediss://`, the credentials, the first node, path and query as written. */
  readonly single: string;
}

/**
 * Takes a cluster URL apart, or returns `undefined` for any other text (a single-node URL, or a
 * cluster URL whose host list is empty or holds a port that is not a number).
 *
 * @example
 * splitClusterUrl('rediss+cluster://:pw@a:7000,b:7001/?global_keyprefix=%7Bq%7D:')
 * // → { nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }],
 * //     single: 'rediss://:pw@a:7000/?global_keyprefix=%7Bq%7D:' }
 */
export function splitClusterUrl(url: string): ClusterUrlParts | undefined {
  const match = CLUSTER_URL.exec(url);
  if (!match) return undefined;
  const [, scheme = '', authority = '', rest = ''] = match;
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hosts = authority.slice(at + 1).split(',');
  const nodes: RedisNode[] = [];
  for (const text of hosts) {
    const node = parseNode(text);
    if (!node) return undefined;
    nodes.push(node);
  }
  const [first] = hosts;
  return { nodes, single: `${scheme.toLowerCase()}://${userinfo}${first}${rest}` };
}

/**
 * `edit` applied to a Redis URL of either form: a single-node URL as it is; a cluster URL
 * through its single-node form, the host list put back after (the edit's host is ignored).
 */
export function editRedisUrl(url: string, edit: (single: string) => string): string {
  const parts = splitClusterUrl(url);
  if (!parts) return edit(url);
  const edited = edit(parts.single);
  const match = /^(rediss?):\/\/([^/?#]*)([\s\S]*)$/i.exec(edited);
  if (!match) return edited;
  const [, scheme = '', authority = '', rest = ''] = match;
  const at = authority.lastIndexOf('@');
  const userinfo = at === -1 ? '' : authority.slice(0, at + 1);
  const hosts = parts.nodes.map(({ host, port }) => `${bracketed(host)}:${port}`).join(',');
  return `${scheme}+cluster://${userinfo}${hosts}${rest}`;
}

/** The URL a single-node reader can parse: a cluster URL's single-node form, or `url` itself. */
export function singleNodeForm(url: string): string {
  return splitClusterUrl(url)?.single ?? url;
}

/** `host:port` with an IPv6 host in brackets, or `undefined` when it is not one. */
function parseNode(text: string): RedisNode | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(text);
  if (!match) return undefined;
  const [, host = '', port] = match;
  const number = port === undefined ? DEFAULT_PORT : Number(port);
  if (number < 1 || number > 65_535) return undefined;
  return { host: host.replace(/^\[|\]$/g, ''), port: number };
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * What `dev` tells a person once serverless-offline is ready: where to send requests (the HTTP
 * routes serverless-offline announced), how tasks reach their functions, and what the lines that
 * follow mean.
 */
import type { OfflineRoute } from './local-offline.js';

/** What the banner says. */
export interface BannerFacts {
  /** From the start of `dev` to ready. */
  readonly bootMs: number;
  /** The HTTP routes, as serverless-offline announced them. */
  readonly routes: readonly OfflineRoute[];
  /** serverless-offline's Lambda Invoke API. */
  readonly lambdaEndpoint: string;
  /** How messages reach the task functions, in one sentence without its full stop. */
  readonly via: string;
}

/** What a request to the library's producer route carries, and what it answers. */
const PRODUCER_NOTE = '{"args", "kwargs", "countdown", …} → 202 {id}';

/**
 * The banner's lines.
 *
 * @example
 * Ready in 8.2 s. Send requests to:
 *   POST http://localhost:3000/tasks/{name}  {"args", "kwargs", "countdown", …} → 202 {id}
 *   GET  http://localhost:3000/events/{id}
 * Tasks run in serverless-offline's functions: the local poller drains events on … .
 */
export function bannerLines(facts: BannerFacts): string[] {
  const ready = `Ready in ${(facts.bootMs / 1000).toFixed(1)} s.`;
  const routes = facts.routes.map((route) => ({
    method: route.method,
    // serverless-offline listens on 127.0.0.1, which `localhost` reaches too, and reads better.
    url: route.url.replace(/^http:\/\/127\.0\.0\.1:/, 'http://localhost:'),
  }));
  const width = Math.max(0, ...routes.map((route) => route.url.length));
  const lines =
    routes.length === 0
      ? [`${ready} The service has no HTTP routes.`]
      : [
          `${ready} Send requests to:`,
          ...routes.map(({ method, url }) => {
            const note = /\/tasks\/\{name\}$/.test(url) && method === 'POST' ? PRODUCER_NOTE : '';
            return `  ${method.padEnd(4)} ${url.padEnd(width)}  ${note}`.trimEnd();
          }),
        ];
  return [
    '',
    ...lines,
    `Lambda Invoke API: ${facts.lambdaEndpoint}`,
    `Tasks run in serverless-offline's functions: ${facts.via}.`,
    'One line per settled message: time, task[id], retries, outcome (with the delay of a retry or the reason of a dead letter). Ctrl-C stops.',
    '',
  ];
}

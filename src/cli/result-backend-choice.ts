/**
 * Which result backend a command uses: `--result-backend <url>`, else the app runtime's
 * (`createRuntime({ resultBackend })`), else `RESULT_BACKEND`, else none. The backend's module is
 * loaded only when one is named, so commands of apps that store no results do not pay for it.
 */
import type { RedisResultBackend } from '../brokers/redis/redis-result-backend.js';
import type { LoadedApp } from './app-loader.js';
import type { CliContext } from './context.js';

/** The backend chosen, or `null` when none is configured. */
export async function chooseResultBackend(
  context: Pick<CliContext, 'env'>,
  app: LoadedApp,
  flag?: string,
): Promise<RedisResultBackend | null> {
  if (!flag) {
    const fromRuntime = app.runtime?.resultBackend?.();
    if (fromRuntime) return fromRuntime;
  }
  const url = flag || context.env.RESULT_BACKEND?.trim();
  if (!url) return null;
  const [{ RedisResultBackend }, { routeFor }] = await Promise.all([
    import('../brokers/redis/redis-result-backend.js'),
    import('../core/canvas.js'),
  ]);
  return new RedisResultBackend(url, { route: routeFor(app.registry) });
}

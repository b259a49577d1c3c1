/**
 * The running part of `serverless-celery dev` (commands/dev.ts): checks the service, the broker
 * and the ports, starts serverless-offline, then the Redis poller or the Amazon MQ feeder (which
 * store results where the functions' `RESULT_BACKEND` says, as the plugin reports it), and
 * stops them in order. Loaded only by `dev`: it brings the AWS SDK and serverless-offline's
 * process handling, which the other commands do without.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Broker } from '../brokers/broker.js';
import type { RedisResultBackend } from '../brokers/redis/redis-result-backend.js';
import { describeEndpoint } from '../config/broker-config.js';
import type { Registry } from '../core/registry.js';
import type { LambdaInvoker } from '../lambda/lambda-executor.js';
import { DEV_ENV, type DevSettings, readDevReport } from '../serverless/dev-settings.js';
import type { WorkerEvent } from '../worker/dispatch.js';
import { type BrokerChoice, withBroker } from './broker-choice.js';
import type { CliContext } from './context.js';
import { AppConfigError, EXIT_CODES, UnavailableError } from './exit-codes.js';
import { localDispatcher, runAmazonMqFeeder } from './local-amazon-mq.js';
import { type BannerFacts, bannerLines } from './local-banner.js';
import { functionPrefix, type LocalOffline, routeCollector } from './local-offline.js';
import { runLocalPoller } from './local-poller.js';
import { chooseLogFormat, formatAttempt } from './log-format.js';
import { describeBroker } from './output.js';

/** Where serverless-offline listens: IPv4 loopback, so `localhost` and the SDK agree. */
export const DEV_HOST = '127.0.0.1';

/** serverless-offline's own default ports, taken when free and none is given. */
export const DEFAULT_PORTS = { http: 3000, lambda: 3002 } as const;

/** How long esbuild and serverless-offline may take to open their ports. */
const READY_TIMEOUT_MS = 120_000;

/** What `dev` decided from its options, the app and the broker. */
export interface DevSetup {
  readonly registry: Registry;
  /** The queues to drain: every queue of the app. */
  readonly queues: readonly string[];
  readonly choice: BrokerChoice;
  /** The service's configuration, relative to `context.cwd`. */
  readonly config: string;
  readonly stage: string;
  /** Asked for; else 3000 when free, else any free port. */
  readonly httpPort?: number;
  /** Asked for; else 3002 when free, else any free port. */
  readonly lambdaPort?: number;
  /** `--param` values for serverless-offline. */
  readonly params: Record<string, string>;
  /** What the plugin is told ({@link DEV_ENV}); the session adds its `reportFile`. */
  readonly settings: DevSettings;
  /** `performance.now()` when `dev` started, for the banner's boot time. */
  readonly started: number;
}

/**
 * Runs the session until a shutdown signal.
 *
 * @returns 0 after a clean stop; 1 when serverless-offline did not start or died
 * @throws AppConfigError for a missing configuration, one without a literal service name, or no
 *   Serverless Framework installed; UnavailableError for an unreachable broker or a taken port
 */
export async function runDevSession(context: CliContext, setup: DevSetup): Promise<number> {
  const service = serviceOf(context, setup);
  const { choice, queues } = setup;
  return withBroker(choice, async (broker) => {
    // Fail fast, with the one-line explanation, when the broker is down at start.
    await broker.stats(queues[0] as string);
    const ports = await choosePorts(context, setup);
    const parts = { app: setup.registry, broker, choice, service, queues };
    // The plugin's report may hold the result backend's password: a folder only we can read.
    const reportDir = await mkdtemp(path.join(tmpdir(), 'serverless-celery-dev-'));
    try {
      const reportFile = path.join(reportDir, 'report.json');
      return await new DevSession(context, parts).run({ ...setup, ...ports, reportFile });
    } finally {
      await rm(reportDir, { recursive: true, force: true });
    }
  });
}

/** The service folder, its configuration file and the functions' name prefix. */
interface Service {
  readonly dir: string;
  readonly config: string;
  readonly stage: string;
  readonly prefix: string;
}

function serviceOf(context: CliContext, setup: DevSetup): Service {
  const file = path.resolve(context.cwd, setup.config);
  if (!existsSync(file)) {
    throw new AppConfigError(
      `no ${file}: dev runs the service of a serverless.yml (run it in the service's folder, or pass --config)`,
    );
  }
  const { stage } = setup;
  const dir = path.dirname(file);
  const config = path.basename(file);
  try {
    return { dir, config, stage, prefix: functionPrefix(dir, stage, config) };
  } catch (error) {
    throw new AppConfigError((error as Error).message, { cause: error });
  }
}

/**
 * The ports asked for (refused when taken), else serverless-offline's defaults when free, else
 * ports the system picks: a second `dev` runs beside the first.
 */
async function choosePorts(
  context: CliContext,
  options: Pick<DevSetup, 'httpPort' | 'lambdaPort'>,
): Promise<{ httpPort: number; lambdaPort: number }> {
  // A port picked for one must not be the one asked for the other.
  const asked = [options.httpPort, options.lambdaPort].filter((port) => port !== undefined);
  const { http, lambda } = DEFAULT_PORTS;
  const httpPort = await portFor(context, '--http-port', options.httpPort, http, asked);
  const lambdaPort = await portFor(context, '--lambda-port', options.lambdaPort, lambda, [
    ...asked,
    httpPort,
  ]);
  return { httpPort, lambdaPort };
}

/** `given` unless taken; else `preferred` when free and not in `taken`; else a free one. */
async function portFor(
  context: CliContext,
  flag: string,
  given: number | undefined,
  preferred: number,
  taken: readonly number[],
): Promise<number> {
  const { offline } = context;
  if (given !== undefined) {
    if (await offline.isListening(DEV_HOST, given)) {
      throw new UnavailableError(
        `${flag} ${given}: ${DEV_HOST}:${given} is already in use (another dev, npm start or serverless-offline?): stop it or pick another port`,
      );
    }
    return given;
  }
  if (!taken.includes(preferred) && !(await offline.isListening(DEV_HOST, preferred))) {
    return preferred;
  }
  for (;;) {
    const port = await offline.freePort(DEV_HOST);
    if (!taken.includes(port)) return port;
  }
}

/** What one `dev` run works with. */
interface SessionParts {
  readonly app: Registry;
  readonly broker: Broker;
  readonly choice: BrokerChoice;
  readonly service: Service;
  readonly queues: readonly string[];
}

/** One run: serverless-offline, then the poller or the feeder, until stopped. */
class DevSession {
  readonly #context: CliContext;
  readonly #parts: SessionParts;
  readonly #stop = new AbortController();
  #offline: LocalOffline | undefined;

  constructor(context: CliContext, parts: SessionParts) {
    this.#context = context;
    this.#parts = parts;
  }

  async run(
    setup: Pick<DevSetup, 'params' | 'settings' | 'started'> & {
      httpPort: number;
      lambdaPort: number;
      /** Where the plugin reports what the functions got. */
      reportFile: string;
    },
  ): Promise<number> {
    const { service, choice } = this.#parts;
    const say = (line: string) => this.#context.stderr(`${line}\n`);
    const dispose = this.#context.onShutdown(
      () => {
        say('Stopping: the poller settles what it holds, then serverless-offline stops…');
        this.#stop.abort();
      },
      () => this.#offline?.kill(),
    );
    const routes = routeCollector();
    try {
      say(
        `Starting serverless-offline (stage ${service.stage}) for ${path.join(service.dir, service.config)}: broker ${describeBroker(choice.identity)}`,
      );
      try {
        this.#offline = await this.#context.offline.start({
          cwd: service.dir,
          config: service.config,
          stage: service.stage,
          host: DEV_HOST,
          httpPort: setup.httpPort,
          lambdaPort: setup.lambdaPort,
          params: setup.params,
          env: { [DEV_ENV]: JSON.stringify({ ...setup.settings, reportFile: setup.reportFile }) },
          // serverless-offline spaces its output with blank lines; between live lines they only scroll.
          onLine: (line) => {
            routes.add(line);
            if (line.trim() !== '') say(`[offline] ${line}`);
          },
        });
      } catch (error) {
        throw new AppConfigError((error as Error).message, { cause: error });
      }
      const offline = this.#offline;
      say(`[offline] process group ${offline.pid}`);
      try {
        await Promise.race([offline.waitReady(READY_TIMEOUT_MS), aborted(this.#stop.signal)]);
      } catch (error) {
        say(`${(error as Error).message}; its output is above.`);
        await offline.stop();
        return EXIT_CODES.failure;
      }
      if (this.#stop.signal.aborted) {
        await offline.stop();
        return EXIT_CODES.ok;
      }
      return await this.#serve(
        offline,
        {
          bootMs: performance.now() - setup.started,
          routes: routes.routes(),
          lambdaEndpoint: `http://${DEV_HOST}:${setup.lambdaPort}`,
        },
        setup.reportFile,
      );
    } finally {
      dispose();
    }
  }

  /** Runs the poller or the feeder until stopped or serverless-offline dies. */
  async #serve(
    offline: LocalOffline,
    banner: Omit<BannerFacts, 'via'>,
    reportFile: string,
  ): Promise<number> {
    const { choice, queues, service } = this.#parts;
    const say = (line: string) => this.#context.stderr(`${line}\n`);
    let results: RedisResultBackend | null = null;
    try {
      results = await this.#openResults(reportFile);
      const client = await this.#context.offline.lambdaClient(banner.lambdaEndpoint);
      const transport = this.#startTransport(client, results);
      const on = `${queues.join(', ')} on ${describeBroker(choice.identity)}`;
      const stores = results
        ? `, and stores their results in Redis ${describeEndpoint(results.config.url)}`
        : '';
      const via =
        choice.identity.kind === 'redis'
          ? `the local poller drains ${on} and invokes ${service.prefix}task-* through ${banner.lambdaEndpoint}${stores}`
          : `the local Amazon MQ event source feeds ${on} to the dispatcher, which invokes ${service.prefix}task-* through ${banner.lambdaEndpoint}${stores}`;
      for (const line of bannerLines({ ...banner, via })) say(line);
      const ended = await Promise.race([
        transport.then(() => 'stopped' as const),
        offline.exited.then(() => 'offline exited' as const),
      ]);
      if (ended === 'offline exited' && !this.#stop.signal.aborted) {
        say('serverless-offline exited on its own; its output is above. Stopping.');
        this.#stop.abort();
        await transport;
        return EXIT_CODES.failure;
      }
      await transport;
      return EXIT_CODES.ok;
    } finally {
      // Whatever happened above, serverless-offline runs in a process group of its own and would
      // outlive us: stop it last, once the poller has settled what it held through it.
      await offline.stop();
      await results?.close();
      say('Stopped.');
    }
  }

  /**
   * The result backend of the functions, as the plugin reported it once the framework had
   * resolved `serverless.yml`, or null when they have none (they then return no results).
   */
  async #openResults(reportFile: string): Promise<RedisResultBackend | null> {
    const report = await readDevReport(reportFile);
    if (!report) {
      // An older plugin, or none: the functions may store nothing either.
      const { config } = this.#parts.service;
      this.#context.stderr(
        `Results: the serverless-celery plugin reported no result backend (is it among the plugins of ${config}, and of this version?): none are stored.\n`,
      );
      return null;
    }
    if (!report.resultBackend) return null;
    const [{ RedisResultBackend }, { routeFor }] = await Promise.all([
      import('../brokers/redis/redis-result-backend.js'),
      import('../core/canvas.js'),
    ]);
    return new RedisResultBackend(report.resultBackend, { route: routeFor(this.#parts.app) });
  }

  /** The Redis poller or the Amazon MQ feeder, whichever the broker needs. */
  #startTransport(client: LambdaInvoker, resultBackend: RedisResultBackend | null): Promise<void> {
    const { app: registry, broker, choice, queues, service } = this.#parts;
    const context = this.#context;
    const format = chooseLogFormat(undefined, context.env, context.stdoutIsTTY);
    const onOutcome = (event: WorkerEvent) =>
      context.stdout(formatAttempt(format, event, registry, new Date(context.now())));
    const warn = (message: string) => context.stderr(`[poller] ${message}\n`);
    if (choice.identity.kind === 'redis') {
      return runLocalPoller({
        broker,
        registry,
        client,
        functionPrefix: service.prefix,
        signal: this.#stop.signal,
        queues,
        onOutcome,
        warn,
        resultBackend,
      });
    }
    return runAmazonMqFeeder({
      url: choice.url,
      registry,
      queues,
      dispatch: localDispatcher({
        registry,
        broker,
        client,
        functionPrefix: service.prefix,
        onOutcome,
        resultBackend,
      }),
      signal: this.#stop.signal,
      warn,
    });
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

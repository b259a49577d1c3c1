/**
 * The Serverless Framework plugin: turns the task registry of an app into the functions of a
 * service. It runs at package time (and for `offline`), imports the app module named by
 * `custom.celery.app` and no other runtime code, and adds:
 *
 * - one function per task (`task-<taskFunctionKey>`), one cron trigger per periodic task
 *   (`cron-…`, at the EventBridge translation of its cron);
 * - the poller (Redis) or the Amazon MQ dispatcher (RabbitMQ), and the producers;
 * - the roles (celery-roles.ts), `FUNCTION_PREFIX` and `BROKER_URL`;
 * - the bundling: serverless-esbuild with the settings the library needs (bundling.ts).
 *
 * Written against the documented plugin API only (the constructor's arguments, `hooks`,
 * `configSchemaHandler`, `service`, `classes.Error`), so it runs under osls and Serverless
 * Framework v4 alike. Under v4, keep `build: { esbuild: false }` in serverless.yml: v4 would
 * otherwise bundle TypeScript handlers of your own with its built-in esbuild as well.
 *
 * @example
 * // serverless.yml
 * // service: my-service
 * // provider: { name: aws, runtime: nodejs22.x }
 * // plugins: [serverless-celery]
 * // custom: { celery: { app: ./src/app.ts } }
 */
import { CeleryError } from '../core/errors.js';
import {
  clearBuildFolder,
  composeEsbuild,
  esbuildSettings,
  listsEsbuildPlugin,
  PACKAGING_HOOKS,
} from './bundling.js';
import { type CeleryConfig, celeryConfigJsonSchema, parseCeleryConfig } from './celery-config.js';
import { celeryRoles } from './celery-roles.js';
import { devSettingsFromEnv, withDevSettings } from './dev-settings.js';
import { entryHandler, writeEntries } from './function-entries.js';
import { type AppModule, loadAppModule } from './load-app-module.js';
import { type CeleryPlan, planFunctions } from './plan-functions.js';
import type {
  Hook,
  PluginLog,
  PluginOptions,
  PluginUtils,
  Serverless,
  ServerlessPlugin,
} from './serverless-types.js';

/** What the `initialize` hook found and added. */
interface Prepared {
  readonly config: CeleryConfig;
  readonly app: AppModule;
  readonly plan: CeleryPlan;
  readonly serviceDir: string;
  /** `provider.vpc` as written (the framework replaces an absent one with `{}` when compiling). */
  readonly providerVpc: unknown;
}

/** The plugin. The framework constructs it; its work happens in {@link hooks}. */
export class ServerlessCeleryPlugin implements ServerlessPlugin {
  readonly hooks: Record<string, Hook>;
  readonly #serverless: Serverless;
  readonly #log: PluginLog;
  #prepared: Prepared | undefined;
  #entries: Promise<void> | undefined;

  constructor(serverless: Serverless, options: PluginOptions, utils: PluginUtils = {}) {
    this.#serverless = serverless;
    this.#log = utils.log ?? consoleLog();
    serverless.configSchemaHandler.defineCustomProperties({
      properties: { celery: celeryConfigJsonSchema() },
    });
    if (listsEsbuildPlugin(serverless)) {
      throw new serverless.classes.Error(
        'serverless-celery runs serverless-esbuild itself: remove serverless-esbuild from ' +
          '`plugins` (your custom.esbuild settings still apply)',
      );
    }
    const esbuild = composeEsbuild(serverless, options, { ...utils, log: this.#log });
    const hooks: Record<string, Hook> = {};
    for (const [event, hook] of Object.entries(esbuild)) {
      // Every bundling hook needs the handler files; cleanups and `initialize` do not.
      hooks[event] =
        event === 'initialize' || event.startsWith('after:')
          ? hook
          : async () => {
              await this.#writeEntries();
              if (PACKAGING_HOOKS.has(event)) await this.#clearBuildFolder();
              await hook();
            };
    }
    hooks.initialize = async () => {
      await this.#guard(() => this.#initialize());
      await esbuild.initialize?.();
    };
    hooks['package:compileEvents'] = () => this.#guard(async () => this.#addRoles());
    this.hooks = hooks;
  }

  /** Loads the app, adds its functions, and gives serverless-esbuild its settings. */
  async #initialize(): Promise<void> {
    const { service, config: frameworkConfig } = this.#serverless;
    const written = parseCeleryConfig(service.custom?.celery);
    // Under `serverless-celery dev`, its broker and local settings win over custom.celery.
    const dev = devSettingsFromEnv();
    const config = dev ? withDevSettings(written, dev) : written;
    const serviceDir =
      this.#serverless.serviceDir ??
      frameworkConfig.serviceDir ??
      frameworkConfig.servicePath ??
      process.cwd();
    const app = await loadAppModule(config.app, serviceDir);
    const plan = planFunctions(app.registry, config, {
      service: service.service,
      stage: this.#serverless.getProvider('aws').getStage(),
      providerTimeout: service.provider.timeout,
    });
    const clashes = plan.functions.filter((fn) => service.functions[fn.key] !== undefined);
    if (clashes.length > 0) {
      throw new this.#serverless.classes.Error(
        `serverless-celery generates ${clashes.map((fn) => `functions.${fn.key}`).join(', ')} ` +
          'from the registry: remove them, and override their settings under custom.celery',
      );
    }
    for (const fn of plan.functions) {
      service.functions[fn.key] = { ...fn.definition, handler: entryHandler(fn.key) };
    }
    service.provider.environment ??= {};
    const environment = service.provider.environment;
    for (const [name, value] of Object.entries(plan.environment)) {
      const given = environment[name];
      if (given !== undefined && JSON.stringify(given) !== JSON.stringify(value)) {
        throw new this.#serverless.classes.Error(
          `provider.environment.${name} is ${JSON.stringify(given)}, but serverless-celery sets ` +
            `it to ${JSON.stringify(value)}: remove it from provider.environment` +
            (name === 'BROKER_URL' ? ' (custom.celery.broker.url sets it)' : ''),
        );
      }
      environment[name] = value;
    }
    // One zip per function, each with its own bundle only.
    service.package ??= {};
    service.package.individually ??= true;
    service.custom ??= {};
    service.custom.esbuild = esbuildSettings(
      config.broker.kind,
      service.custom.esbuild as Record<string, unknown> | undefined,
    );
    this.#prepared = { config, app, plan, serviceDir, providerVpc: service.provider.vpc };
    const counts = plan.functions.reduce<Record<string, number>>((all, fn) => {
      all[fn.kind] = (all[fn.kind] ?? 0) + 1;
      return all;
    }, {});
    this.#log.verbose(
      `serverless-celery: ${plan.functions.length} functions from ${config.app} (${JSON.stringify(counts)})`,
    );
  }

  /** Writes the handler files once, before the first bundling hook that needs them. */
  #writeEntries(): Promise<void> {
    const prepared = this.#prepared;
    if (!prepared) return Promise.resolve();
    this.#entries ??= writeEntries(prepared.plan.functions, prepared.app, prepared.serviceDir);
    return this.#entries;
  }

  #clearBuildFolder(): Promise<void> {
    const prepared = this.#prepared;
    const settings = this.#serverless.service.custom?.esbuild as Record<string, unknown>;
    return prepared ? clearBuildFolder(prepared.serviceDir, settings) : Promise.resolve();
  }

  /** Adds the roles to the compiled template (the service's own `resources` merge over them). */
  #addRoles(): void {
    const prepared = this.#prepared;
    const template = this.#serverless.service.provider.compiledCloudFormationTemplate;
    if (!prepared || !template) return;
    const { broker } = prepared.config;
    if (broker.url === undefined) {
      this.#log.warning(
        'serverless-celery: custom.celery.broker.url is not set, so the deployed functions use ' +
          `the local default (${broker.kind === 'redis' ? 'redis://127.0.0.1:6379/0' : 'amqp://127.0.0.1:5672/'}), ` +
          `which no Lambda function can reach: set it, e.g. url: \${param:brokerUrl}`,
      );
    }
    if (broker.kind === 'rabbitmq' && (broker.amazonMq?.arn ?? '') === '') {
      this.#log.warning(
        'serverless-celery: custom.celery.broker.amazonMq.arn is not set, so the dispatcher ' +
          'has no event source and nothing consumes the RabbitMQ queues in AWS',
      );
    }
    Object.assign(
      template.Resources,
      celeryRoles(prepared.plan, { providerVpc: prepared.providerVpc }),
    );
  }

  /** Our errors become the framework's, which it prints as a message without a stack trace. */
  async #guard(work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      if (error instanceof CeleryError) {
        throw new this.#serverless.classes.Error(error.message);
      }
      throw error;
    }
  }
}

/** A logger for a framework that passes none (osls and Serverless v3+ always pass theirs). */
function consoleLog(): PluginLog {
  const quiet = () => {};
  return Object.assign((message: string) => console.log(message), {
    error: (message: string) => console.error(message),
    warning: (message: string) => console.warn(message),
    notice: (message: string) => console.log(message),
    info: quiet,
    verbose: quiet,
    debug: quiet,
  });
}

// The framework loads a plugin as the default export (or `module.exports`) of its module.
export default ServerlessCeleryPlugin;

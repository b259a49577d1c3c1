/**
 * The Serverless Framework plugin: turns the task registry of an app into the functions of a
 * service. It runs at package time (and for `offline`), imports the app module named by
 * `custom.celery.app` and no other runtime code, and adds:
 *
 * - one function per task (`task-<taskFunctionKey>`), one cron trigger per periodic task
 *   (`cron-…`, at the EventBridge translation of its cron);
 * - the poller (Redis) or the Amazon MQ dispatcher (RabbitMQ), and the producers;
 * - the roles (celery-roles.ts), `FUNCTION_PREFIX`, `BROKER_URL` and `BROKER_SECRET_ARN`;
 * - the broker's VPC on the functions that connect to it and on your own functions listed in
 *   `custom.celery.vpc.functions` (function-vpc.ts, own-functions.ts);
 * - the queue of failed scheduled invocations, and its outputs (schedule-failures.ts);
 * - the bundling: serverless-esbuild with the settings the library needs (bundling.ts).
 *
 * At package time (`package`, `deploy`) it refuses a broker URL no Lambda function can reach on a
 * stage that is not local (broker-checks.ts); `offline` and `serverless-celery dev` never package.
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
import { CeleryError, InvalidConfigError } from '../core/errors.js';
import { deploymentIssues } from './broker-checks.js';
import {
  clearBuildFolder,
  composeEsbuild,
  esbuildSettings,
  listsEsbuildPlugin,
  PACKAGING_HOOKS,
} from './bundling.js';
import {
  type CeleryConfig,
  CONFIG_PATH,
  celeryConfigJsonSchema,
  parseCeleryConfig,
} from './celery-config.js';
import { celeryRoles } from './celery-roles.js';
import { devSettingsFromEnv, withDevSettings, writeDevReport } from './dev-settings.js';
import { entryHandler, writeEntries } from './function-entries.js';
import { type AppModule, loadAppModule } from './load-app-module.js';
import { functionsOfCeleryRole, joinBrokerVpc, openIamRoutes } from './own-functions.js';
import { type CeleryPlan, planFunctions } from './plan-functions.js';
import { scheduleFailureResources, sendsScheduleFailures } from './schedule-failures.js';
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
  readonly stage: string;
}

/** The plugin. The framework constructs it; its work happens in {@link hooks}. */
export class ServerlessCeleryPlugin implements ServerlessPlugin {
  readonly hooks: Record<string, Hook>;
  readonly #serverless: Serverless;
  readonly #log: PluginLog;
  #prepared: Prepared | undefined;
  #entries: Promise<void> | undefined;
  #deploymentChecked = false;

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
              // Refused before seconds of bundling, not after.
              if (PACKAGING_HOOKS.has(event))
                await this.#guard(async () => this.#checkDeployment());
              await this.#writeEntries();
              if (PACKAGING_HOOKS.has(event)) await this.#clearBuildFolder();
              await hook();
            };
    }
    hooks.initialize = async () => {
      await this.#guard(() => this.#initialize());
      await esbuild.initialize?.();
    };
    hooks['package:compileEvents'] = () => this.#guard(async () => this.#addResources());
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
    const stage = this.#serverless.getProvider('aws').getStage();
    const plan = planFunctions(app.registry, config, {
      service: service.service,
      stage,
      providerTimeout: service.provider.timeout,
      providerLogRetentionInDays: service.provider.logRetentionInDays,
    });
    const clashes = plan.functions.filter((fn) => service.functions[fn.key] !== undefined);
    if (clashes.length > 0) {
      throw new this.#serverless.classes.Error(
        `serverless-celery generates ${clashes.map((fn) => `functions.${fn.key}`).join(', ')} ` +
          'from the registry: remove them, and override their settings under custom.celery',
      );
    }
    const ownVpcIssues = joinBrokerVpc(service.functions, config);
    if (ownVpcIssues.length > 0) throw new InvalidConfigError('serverless.yml', ownVpcIssues);
    for (const fn of plan.functions) {
      service.functions[fn.key] = { ...fn.definition, handler: entryHandler(fn.key) };
    }
    if (dev) {
      const opened = openIamRoutes(service.functions);
      if (opened.length > 0) {
        this.#log.notice(
          `serverless-celery dev: serving ${opened.join(', ')} unsigned (serverless-offline ` +
            'cannot check aws_iam); deployed, they keep their IAM authorizer',
        );
      }
      // dev's own poller or dispatcher stores results where these functions read them.
      await writeDevReport(dev, config);
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
      config.resultBackend !== undefined,
    );
    this.#prepared = { config, app, plan, serviceDir, providerVpc: service.provider.vpc, stage };
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

  /**
   * Checks the broker for a deployment, once per run: errors refuse it, warnings are printed.
   *
   * @throws InvalidConfigError when the broker URL is missing or local on a stage that is not
   */
  #checkDeployment(): void {
    const prepared = this.#prepared;
    if (!prepared || this.#deploymentChecked) return;
    this.#deploymentChecked = true;
    const { errors, warnings } = deploymentIssues(
      prepared.config.broker,
      prepared.stage,
      `${CONFIG_PATH}.broker`,
    );
    if (errors.length > 0) throw new InvalidConfigError('serverless.yml', errors);
    for (const warning of warnings) this.#log.warning(`serverless-celery: ${warning}`);
  }

  /**
   * Adds the roles and the schedule failure queue to the compiled template (the service's own
   * `resources` merge over them), after `#checkDeployment` if no bundling hook ran it.
   */
  #addResources(): void {
    const prepared = this.#prepared;
    const { service } = this.#serverless;
    const template = service.provider.compiledCloudFormationTemplate;
    if (!prepared || !template) return;
    this.#checkDeployment();
    const generated = new Set(prepared.plan.functions.map((fn) => fn.key));
    const own = Object.fromEntries(
      Object.entries(service.functions).filter(([key]) => !generated.has(key)),
    );
    Object.assign(
      template.Resources,
      celeryRoles(prepared.plan, {
        providerVpc: prepared.providerVpc,
        ownFunctions: functionsOfCeleryRole(own, service.provider.iam?.role),
      }),
    );
    // No cron task and no poller (RabbitMQ): no function sends there, no queue.
    if (sendsScheduleFailures(prepared.plan.functions.map((fn) => fn.definition))) {
      const { resources, outputs } = scheduleFailureResources();
      Object.assign(template.Resources, resources);
      template.Outputs = { ...template.Outputs, ...outputs };
    }
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

/**
 * The slice of the Serverless Framework's plugin API that the plugin uses, typed by hand (the
 * framework ships no types). Everything here is documented plugin API, the same in osls 4 and
 * Serverless Framework v4: the constructor's three arguments, `hooks`, `service.functions`,
 * `service.custom`, `provider.compiledCloudFormationTemplate`, `getProvider('aws').getStage()`,
 * `configSchemaHandler.defineCustomProperties` and `classes.Error`. The plugin reaches into
 * nothing else.
 */

/** A function of `serverless.yml`, as the framework holds it (only what the plugin reads). */
export interface FunctionDefinition {
  name?: string;
  handler?: string;
  role?: unknown;
  timeout?: number;
  vpc?: unknown;
  environment?: Record<string, unknown>;
  events?: unknown[];
  [property: string]: unknown;
}

/** A CloudFormation resource. */
export interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

/** `serverless.service.provider`, the part the plugin reads or extends. */
export interface ProviderConfig {
  name: string;
  runtime?: string;
  timeout?: number;
  vpc?: unknown;
  /** Days CloudWatch keeps every function's logs, unless a function sets its own. */
  logRetentionInDays?: unknown;
  /** `role`: the logical id, ARN or definition every function runs with by default. */
  iam?: { role?: unknown; [property: string]: unknown };
  environment?: Record<string, unknown>;
  compiledCloudFormationTemplate?: {
    Resources: Record<string, CfnResource>;
    Outputs?: Record<string, unknown>;
  };
  [property: string]: unknown;
}

/** The third constructor argument: the framework's logger (v3 plugin API and later). */
export interface PluginUtils {
  readonly log?: PluginLog;
}

/** The framework's logger. */
export interface PluginLog {
  (message: string): void;
  error(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
  info(message: string): void;
  verbose(message: string): void;
  debug(message: string): void;
}

/** The `serverless` instance a plugin receives. */
export interface Serverless {
  readonly service: {
    service: string;
    provider: ProviderConfig;
    functions: Record<string, FunctionDefinition>;
    custom?: Record<string, unknown>;
    plugins?: readonly string[] | { readonly modules?: readonly string[] };
    package?: { individually?: boolean; [property: string]: unknown };
  };
  /** The service folder (osls 4, Serverless v3 and v4). */
  readonly serviceDir?: string;
  readonly config: { readonly serviceDir?: string; readonly servicePath?: string };
  readonly configSchemaHandler: {
    defineCustomProperties(schema: Record<string, unknown>): void;
    defineFunctionProperties?(provider: string, schema: Record<string, unknown>): void;
  };
  getProvider(name: 'aws'): { getStage(): string };
  readonly classes: { readonly Error: new (message: string) => Error };
}

/** CLI options, as the framework passes them to plugins. */
export type PluginOptions = Readonly<Record<string, unknown>>;

/** A hook: the framework awaits it. */
export type Hook = () => Promise<void> | void;

/** A plugin instance's surface, as the framework reads it. */
export interface ServerlessPlugin {
  readonly hooks: Record<string, Hook>;
}

/** A plugin class, as the framework constructs it. */
export type ServerlessPluginClass = new (
  serverless: Serverless,
  options: PluginOptions,
  utils: PluginUtils,
) => ServerlessPlugin;

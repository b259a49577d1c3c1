/**
 * What the plugin does to the functions a service writes itself (those it does not generate):
 * the ones listed in `custom.celery.vpc.functions` join the broker's VPC; those that run with
 * {@link ROLE_IDS.function} count for its permissions (celery-roles.ts); under
 * `serverless-celery dev`, their `aws_iam` routes are served unsigned.
 *
 * Pure functions over the framework's plain objects; the plugin calls them at the hook where the
 * definitions are final (celery-roles.ts needs each function's own `vpc` and `destinations`).
 */
import type { FieldIssue } from '../core/errors.js';
import { type CeleryConfig, CONFIG_PATH } from './celery-config.js';
import { ROLE_IDS } from './function-definitions.js';
import { brokerVpc } from './function-vpc.js';
import type { FunctionDefinition } from './serverless-types.js';

/**
 * Gives each function of `custom.celery.vpc.functions` the broker's VPC, unless it has a `vpc`
 * of its own (its own wins, as for the generated functions' overrides). Changes `functions`.
 *
 * @returns a problem per listed key that is not a function of the service (a typo would leave
 *   the function out of the VPC, to fail only when it first connects)
 */
export function joinBrokerVpc(
  functions: Record<string, FunctionDefinition>,
  config: CeleryConfig,
): FieldIssue[] {
  const vpc = brokerVpc(config);
  const issues: FieldIssue[] = [];
  for (const [index, key] of (config.vpc?.functions ?? []).entries()) {
    const fn = functions[key];
    if (!fn) {
      issues.push({
        path: `${CONFIG_PATH}.vpc.functions.${index}`,
        message: `no function ${key} under functions (its functions: ${Object.keys(functions).join(', ')})`,
      });
      continue;
    }
    if (vpc && fn.vpc === undefined) fn.vpc = { ...vpc };
  }
  return issues;
}

/**
 * The functions among `functions` that run with {@link ROLE_IDS.function}: their own `role`, or
 * none and `provider.iam.role` (the demo's serverless.yml sets it, so the framework creates no
 * role of its own).
 *
 * @param providerRole - `provider.iam.role` as written (a logical id, an ARN, an object)
 */
export function functionsOfCeleryRole(
  functions: Readonly<Record<string, FunctionDefinition>>,
  providerRole: unknown,
): FunctionDefinition[] {
  return Object.values(functions).filter((fn) => (fn.role ?? providerRole) === ROLE_IDS.function);
}

/**
 * Removes the `aws_iam` authorizer of every `httpApi` route of `functions`, for
 * `serverless-celery dev` only: serverless-offline refuses to start with one ("Serverless Offline
 * only supports retrieving JWT from the headers") while it serves `http` routes with one
 * unsigned. Deployed stacks keep their authorizers: this runs on no `package` or `deploy`.
 *
 * @returns the routes opened, as `METHOD path`, for the log
 */
export function openIamRoutes(functions: Record<string, FunctionDefinition>): string[] {
  const opened: string[] = [];
  for (const fn of Object.values(functions)) {
    for (const event of fn.events ?? []) {
      const route = (event as { httpApi?: Record<string, unknown> }).httpApi;
      if (typeof route !== 'object' || route === null || !isIamAuthorizer(route.authorizer)) {
        continue;
      }
      delete route.authorizer;
      opened.push(`${String(route.method ?? '*').toUpperCase()} ${String(route.path ?? '')}`);
    }
  }
  return opened;
}

/** `aws_iam`, `{ type: 'aws_iam' }`, in any case, as the framework accepts it. */
function isIamAuthorizer(authorizer: unknown): boolean {
  const type =
    typeof authorizer === 'string' ? authorizer : (authorizer as { type?: unknown })?.type;
  return typeof type === 'string' && type.toLowerCase() === 'aws_iam';
}

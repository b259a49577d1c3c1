/**
 * Which functions run in the broker's VPC (`custom.celery.vpc`), and whether a function ends up
 * in a VPC at all, as the framework compiles `VpcConfig`.
 *
 * A function that connects to the broker must be in the VPC when the broker is private
 * (ElastiCache always is; `infra/amazon-mq.yml` is by default): the poller and dispatcher (they
 * drain and settle), the producers and cron triggers (they publish). A task function connects
 * only through its once store, so by default only those that record their runs join; a task that
 * uses the VPC's own resources needs `vpc.tasks: all`. Outside the VPC a function reaches AWS
 * APIs directly; inside, only through a NAT gateway or VPC endpoints (infra/vpc-endpoints.yml).
 */
import type { Task } from '../core/task.js';
import type { CeleryConfig, VpcSettings } from './celery-config.js';
import type { FunctionKind } from './function-definitions.js';

/** A function's `vpc`, as the framework takes it. */
export interface FunctionVpc {
  readonly subnetIds: readonly unknown[];
  readonly securityGroupIds: readonly unknown[];
}

/** `custom.celery.vpc` when it names a VPC (both lists given), else undefined. */
export function brokerVpc(config: CeleryConfig): FunctionVpc | undefined {
  const vpc: VpcSettings | undefined = config.vpc;
  if (!vpc || vpc.subnetIds.length === 0 || vpc.securityGroupIds.length === 0) return undefined;
  return { subnetIds: vpc.subnetIds, securityGroupIds: vpc.securityGroupIds };
}

/**
 * The `vpc` the plugin gives a function of `kind` (before the overrides, which may replace it or
 * opt out with `vpc: false`): the broker's VPC when the function connects to the broker, or is a
 * task that `vpc.tasks` takes in.
 */
export function vpcOf(
  config: CeleryConfig,
  kind: FunctionKind,
  task?: Task,
): { vpc: FunctionVpc } | Record<string, never> {
  const vpc = brokerVpc(config);
  if (!vpc) return {};
  if (kind !== 'task') return { vpc };
  const tasks = config.vpc?.tasks ?? 'onceStore';
  const recordsRuns = Boolean(task?.options.atMostOnce || task?.options.idempotent);
  return tasks === 'all' || (tasks === 'onceStore' && recordsRuns) ? { vpc } : {};
}

/**
 * Whether Lambda attaches a function to a VPC: subnets and security groups, its own or the
 * provider's (`vpc: false` or `null` opts a function out), as the framework compiles `VpcConfig`.
 */
export function runsInVpc(own: unknown, providerVpc: unknown): boolean {
  if (own === null || own === false) return false;
  const pick = (field: 'subnetIds' | 'securityGroupIds') =>
    (own as Partial<FunctionVpc> | undefined)?.[field] ??
    (providerVpc as Partial<FunctionVpc> | undefined)?.[field];
  return pick('subnetIds') !== undefined && pick('securityGroupIds') !== undefined;
}

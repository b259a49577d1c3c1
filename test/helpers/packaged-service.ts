/**
 * Reading what `osls package` wrote for a service: its CloudFormation template and the zips of
 * its functions, by function key (`task-orders-send_confirmation`, `poller`…). Used by
 * `test/integration/example-project.test.ts`, which packages the example service installed from
 * the tarball, and the tests that package the demo's variants (demo-variants.ts).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';

/** One resource of a CloudFormation template. */
export interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly Condition?: string;
  readonly DependsOn?: unknown;
}

/** The part of a CloudFormation template the tests read. */
export interface Template {
  readonly Resources: Record<string, Resource>;
  readonly Outputs?: Record<string, unknown>;
  readonly Conditions?: Record<string, unknown>;
  readonly Parameters?: Record<string, unknown>;
}

/** An IAM policy statement. */
export interface Statement {
  readonly Effect: string;
  readonly Action: string | readonly string[];
  readonly Resource: unknown;
}

/** `{ "Fn::GetAtt": [logicalId, attribute] }`. */
export type GetAtt = { readonly 'Fn::GetAtt': readonly [string, string] };

/** A service packaged into `dir` (osls' `.serverless/`, or `--package <dir>`). */
export interface PackagedService {
  readonly dir: string;
  readonly template: Template;
  /** `<service>-<stage>-`: what every function name starts with. */
  readonly prefix: string;
}

/** Reads the update-stack template that `osls package` wrote into `dir`. */
export async function readPackagedService(dir: string, prefix: string): Promise<PackagedService> {
  const file = path.join(dir, 'cloudformation-template-update-stack.json');
  const template = JSON.parse(await readFile(file, 'utf8')) as Template;
  return { dir, template, prefix };
}

/** The resources of `type`, as `[logicalId, resource]`. */
export function resourcesOfType(template: Template, type: string): [string, Resource][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/** Function key (its name without the prefix) → its AWS::Lambda::Function. */
export function functionsByKey(service: PackagedService): Map<string, Resource> {
  return new Map(
    resourcesOfType(service.template, 'AWS::Lambda::Function').map(([, resource]) => [
      String(resource.Properties.FunctionName).slice(service.prefix.length),
      resource,
    ]),
  );
}

/** The function of `key`; throws naming it when the template has none. */
export function functionOf(service: PackagedService, key: string): Resource {
  const resource = functionsByKey(service).get(key);
  if (!resource) throw new Error(`no function ${service.prefix}${key} in the template`);
  return resource;
}

/** The logical id of the role a function runs with. */
export function roleOf(service: PackagedService, key: string): string {
  return (functionOf(service, key).Properties.Role as GetAtt)['Fn::GetAtt'][0];
}

/** Every EventBridge rule as `[target function key, schedule expression, state]`. */
export function scheduleRules(service: PackagedService): [string | undefined, unknown, unknown][] {
  const keys = new Map(
    resourcesOfType(service.template, 'AWS::Lambda::Function').map(([id, resource]) => [
      id,
      String(resource.Properties.FunctionName).slice(service.prefix.length),
    ]),
  );
  return resourcesOfType(service.template, 'AWS::Events::Rule').map(([, resource]) => {
    const [target] = resource.Properties.Targets as { Arn: GetAtt }[];
    return [
      keys.get(target?.Arn['Fn::GetAtt'][0] ?? ''),
      resource.Properties.ScheduleExpression,
      resource.Properties.State,
    ];
  });
}

/** Every IAM statement of the template's roles and policies, with the id of what holds it. */
export function iamStatements(template: Template): { holder: string; statement: Statement }[] {
  const found: { holder: string; statement: Statement }[] = [];
  for (const [id, resource] of resourcesOfType(template, 'AWS::IAM::Role')) {
    for (const policy of (resource.Properties.Policies ?? []) as unknown[]) {
      const document = (policy as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument;
      for (const statement of document.Statement) found.push({ holder: id, statement });
    }
  }
  for (const type of ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy']) {
    for (const [id, resource] of resourcesOfType(template, type)) {
      const document = resource.Properties.PolicyDocument as { Statement: Statement[] };
      for (const statement of document.Statement) found.push({ holder: id, statement });
    }
  }
  return found;
}

/** A statement's actions as a list. */
export function actionsOf(statement: Statement): readonly string[] {
  return typeof statement.Action === 'string' ? [statement.Action] : statement.Action;
}

/** The ARN the framework's roles grant for a function name, as `Fn::Sub`. */
export function functionArn(name: string): { 'Fn::Sub': string } {
  return {
    'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:${name}`,
  };
}

/**
 * The entries of a zip archive as osls writes them (stored or deflated), by name. Reads the
 * central directory only: no zip64, no encryption, which osls never writes.
 */
export async function unzip(file: string): Promise<Map<string, Buffer>> {
  const zip = await readFile(file);
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error(`${file} is not a zip archive`);
  const count = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  const entries = new Map<string, Buffer>();
  for (let index = 0; index < count; index++) {
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    const local = zip.readUInt32LE(at + 42);
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const data = zip.subarray(start, start + compressedSize);
    entries.set(name, method === 8 ? inflateRawSync(data) : Buffer.from(data));
    at += 46 + nameLength + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
  }
  return entries;
}

/** The variables of a function's environment. */
export function environmentOf(service: PackagedService, key: string): Record<string, string> {
  const { Properties } = functionOf(service, key);
  return (Properties.Environment as { Variables: Record<string, string> }).Variables;
}

/** The policies of a role, by name, as their statements. */
export function policiesOf(template: Template, roleId: string): Record<string, Statement[]> {
  const role = template.Resources[roleId];
  if (!role) throw new Error(`no role ${roleId} in the template`);
  const policies = (role.Properties.Policies ?? []) as {
    PolicyName: string;
    PolicyDocument: { Statement: Statement[] };
  }[];
  return Object.fromEntries(policies.map((p) => [p.PolicyName, p.PolicyDocument.Statement]));
}

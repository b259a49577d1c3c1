/**
 * `cfn-lint` on the CloudFormation templates CI packages (demo-variants.ts: Redis, RabbitMQ on
 * Amazon MQ, Redis in a VPC with a secret and the VPC endpoints) and on the infra/ fragments on
 * their own: no error, and only the warnings listed in {@link ACCEPTED}, each with the reason it
 * stays. cfn-lint (1.x, a Python tool: `pip install cfn-lint`) must be on PATH; without it this
 * file fails, saying so, rather than passing without having looked.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import {
  DEMO_VARIANTS,
  type DemoVariantName,
  type PackagedVariant,
  packageVariants,
  removePackagedVariants,
} from '../helpers/demo-variants.js';

const run = promisify(execFile);

/** One finding of `cfn-lint --format json`. */
interface Finding {
  readonly Level: 'Error' | 'Warning' | 'Informational';
  readonly Message: string;
  readonly Rule: { readonly Id: string };
  readonly Location: { readonly Path: readonly (string | number)[] };
}

/** A warning the templates keep, and why. */
interface Accepted {
  readonly rule: string;
  readonly message: RegExp;
  readonly why: string;
}

const ACCEPTED: readonly Accepted[] = [
  {
    rule: 'W3005',
    message:
      /^'Celery(Function|Poller|Dispatcher)Role' dependency already enforced by a 'GetAtt' at 'Resources\/\w+LambdaFunction\/Properties\/Role'$/,
    // osls writes `DependsOn: [<log group>, <role>]` on every function whose `role` is a logical
    // id, beside the Fn::GetAtt of that role. The extra edge is harmless (CloudFormation orders
    // the same way), and removing it would mean rewriting the framework's compiled functions
    // after it, for every service, against a later osls that may stop writing it.
    why: 'osls adds the role to DependsOn next to its Fn::GetAtt',
  },
  {
    rule: 'W3005',
    message:
      /^'HttpApiIntegration\w+' dependency already enforced by a 'Ref' at 'Resources\/HttpApiRoute\w+\/Properties\/Target\/Fn::Join\/1\/1'$/,
    // The same redundancy in osls' compilation of httpApi events: each route depends on its
    // integration by name and by Ref. Not ours to change, and without effect on a deployment.
    why: 'osls adds the integration to DependsOn next to its Ref',
  },
];

/** `cfn-lint --version`, or the error explaining how to get it. */
async function cfnLintVersion(): Promise<string> {
  try {
    const { stdout } = await run('cfn-lint', ['--version'], { timeout: 60_000 });
    return stdout.trim();
  } catch (error) {
    throw new Error(
      'cfn-lint is not on PATH (a Python tool: pip install "cfn-lint>=1.51,<2"); this test ' +
        'lints the packaged templates with it',
      { cause: error },
    );
  }
}

/** The findings of cfn-lint on `file` (it exits non-zero when it finds any). */
async function lint(file: string): Promise<Finding[]> {
  const result = await run('cfn-lint', ['--format', 'json', '--', file], {
    timeout: 120_000,
    maxBuffer: 16 * 1024 * 1024,
  }).catch((error: Error & { stdout?: string; stderr?: string; code?: number }) => {
    // Exit codes 2, 4, 8 (and sums) report findings; anything else is cfn-lint failing.
    if (typeof error.code === 'number' && error.code > 0 && error.code < 16 && error.stdout) {
      return { stdout: error.stdout };
    }
    throw new Error(`cfn-lint ${file} failed: ${error.message}\n${error.stderr ?? ''}`, {
      cause: error,
    });
  });
  return result.stdout.trim() === '' ? [] : (JSON.parse(result.stdout) as Finding[]);
}

/** What no {@link ACCEPTED} entry argues for, as readable lines. */
function unaccepted(findings: readonly Finding[]): string[] {
  return findings
    .filter(
      (finding) =>
        finding.Level === 'Error' ||
        !ACCEPTED.some(
          (accepted) => accepted.rule === finding.Rule.Id && accepted.message.test(finding.Message),
        ),
    )
    .map(
      (finding) =>
        `${finding.Level} ${finding.Rule.Id} ${finding.Location.Path.join('/')}: ${finding.Message}`,
    );
}

const NAMES = Object.keys(DEMO_VARIANTS) as DemoVariantName[];
let version: string;
let packaged: Record<DemoVariantName, PackagedVariant>;

beforeAll(async () => {
  version = await cfnLintVersion();
  packaged = await packageVariants(NAMES);
}, 180_000);

afterAll(removePackagedVariants);

describe('cfn-lint', () => {
  it.each(NAMES)('finds no error and no unargued warning in the %s template', async (name) => {
    const file = path.join(packaged[name].dir, 'cloudformation-template-update-stack.json');

    const findings = await lint(file);

    expect(unaccepted(findings)).toEqual([]);
    const counts = findings.reduce<Record<string, number>>((all, finding) => {
      all[finding.Rule.Id] = (all[finding.Rule.Id] ?? 0) + 1;
      return all;
    }, {});
    console.info(`${version}, ${name}: ${JSON.stringify(counts)} (all argued in ACCEPTED)`);
  });

  it.each([
    'amazon-mq.yml',
    'elasticache.yml',
    'elasticache-serverless.yml',
    'vpc-endpoints.yml',
    'alarms.yml',
  ])('finds nothing at all in infra/%s on its own', async (fragment) => {
    const findings = await lint(path.join(ROOT, 'infra', fragment));

    expect(findings.map((finding) => `${finding.Rule.Id}: ${finding.Message}`)).toEqual([]);
  });
});

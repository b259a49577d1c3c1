/**
 * A Secrets Manager stand-in on 127.0.0.1: an HTTP server answering the one call the runtime
 * makes, `GetSecretValue`, in the AWS JSON 1.1 protocol the real `@aws-sdk/client-secrets-manager`
 * speaks (`POST /`, header `X-Amz-Target: secretsmanager.GetSecretValue`, a JSON body naming
 * `SecretId`). Point the SDK at it with `AWS_ENDPOINT_URL_SECRETS_MANAGER` (see
 * {@link secretsManagerEnv}); it counts the calls per secret, so a test can tell a cached read
 * from a fetch.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** The stand-in, started by {@link startSecretsManagerStandIn}. */
export interface SecretsManagerStandIn {
  /** `http://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Stores (or rotates) a secret's text under its ARN. */
  put(arn: string, secretString: string): void;
  /** How many GetSecretValue calls named `arn`. */
  callsOf(arn: string): number;
  /** Every `X-Amz-Target` received, in order (anything but GetSecretValue is refused). */
  readonly targets: readonly string[];
  close(): Promise<void>;
}

const JSON_1_1 = 'application/x-amz-json-1.1';

/** Starts the stand-in on a free port of 127.0.0.1. */
export async function startSecretsManagerStandIn(): Promise<SecretsManagerStandIn> {
  const secrets = new Map<string, { value: string; version: string }>();
  const calls = new Map<string, number>();
  const targets: string[] = [];

  const answer = async (request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const target = String(request.headers['x-amz-target'] ?? '');
    targets.push(target);
    const reply = (status: number, body: object) => {
      response.writeHead(status, {
        'content-type': JSON_1_1,
        'x-amzn-requestid': randomUUID(),
      });
      response.end(JSON.stringify(body));
    };
    if (request.method !== 'POST' || target !== 'secretsmanager.GetSecretValue') {
      reply(400, { __type: 'UnknownOperationException', message: `unsupported: ${target}` });
      return;
    }
    const { SecretId: id } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
      SecretId?: string;
    };
    calls.set(String(id), (calls.get(String(id)) ?? 0) + 1);
    const secret = id === undefined ? undefined : secrets.get(id);
    if (!secret) {
      reply(400, {
        __type: 'ResourceNotFoundException',
        message: "Secrets Manager can't find the specified secret.",
      });
      return;
    }
    reply(200, {
      ARN: id,
      Name: String(id).split(':').at(-1),
      SecretString: secret.value,
      VersionId: secret.version,
      VersionStages: ['AWSCURRENT'],
      CreatedDate: Date.now() / 1000,
    });
  };

  const server = createServer((request, response) => {
    answer(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'content-type': JSON_1_1 });
      response.end(JSON.stringify({ __type: 'InternalServiceError', message: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    put: (arn, value) => {
      secrets.set(arn, { value, version: randomUUID() });
    },
    callsOf: (arn) => calls.get(arn) ?? 0,
    targets,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/**
 * The environment that sends the AWS SDK to `standIn` with dummy credentials, and nowhere else
 * (no shared config files, no instance metadata).
 */
export function secretsManagerEnv(standIn: SecretsManagerStandIn): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_SECRETS_MANAGER: standIn.endpoint,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDSTANDIN',
    AWS_SECRET_ACCESS_KEY: 'stand-in-secret-key',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
}

/** A secret ARN of the stand-in's (any account and region would do). */
export function secretArn(name: string): string {
  return `arn:aws:secretsmanager:eu-west-1:123456789012:secret:${name}-${randomUUID().slice(0, 6)}`;
}

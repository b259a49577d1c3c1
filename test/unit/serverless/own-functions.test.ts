import { describe, expect, it } from 'vitest';
import { parseCeleryConfig } from '../../../src/serverless/celery-config.js';
import {
  functionsOfCeleryRole,
  joinBrokerVpc,
  openIamRoutes,
} from '../../../src/serverless/own-functions.js';
import type { FunctionDefinition } from '../../../src/serverless/serverless-types.js';

const VPC = { subnetIds: ['subnet-1'], securityGroupIds: ['sg-1'] };

describe('joinBrokerVpc', () => {
  it('gives the listed functions the broker’s VPC, keeping a vpc of their own', () => {
    // Prepare
    const own = { subnetIds: ['subnet-9'], securityGroupIds: ['sg-9'] };
    const functions: Record<string, FunctionDefinition> = {
      api: { handler: 'a.handler' },
      admin: { handler: 'b.handler', vpc: own },
      public: { handler: 'c.handler' },
    };
    const config = parseCeleryConfig({
      app: './app.ts',
      vpc: { ...VPC, functions: ['api', 'admin'] },
    });

    // Act
    const issues = joinBrokerVpc(functions, config);

    // Assess
    expect(issues).toEqual([]);
    expect(functions.api?.vpc).toEqual(VPC);
    expect(functions.admin?.vpc).toBe(own);
    expect(functions.public?.vpc).toBeUndefined();
  });

  it('leaves them out of any VPC while the lists are empty, but still checks the names', () => {
    // Prepare
    const functions: Record<string, FunctionDefinition> = { api: { handler: 'a.handler' } };
    const config = parseCeleryConfig({
      app: './app.ts',
      vpc: { subnetIds: '', securityGroupIds: '', functions: ['api', 'apx'] },
    });

    // Act
    const issues = joinBrokerVpc(functions, config);

    // Assess
    expect(functions.api?.vpc).toBeUndefined();
    expect(issues).toEqual([
      {
        path: 'custom.celery.vpc.functions.1',
        message: 'no function apx under functions (its functions: api)',
      },
    ]);
  });
});

describe('functionsOfCeleryRole', () => {
  it('counts the functions that name the role, or inherit it from provider.iam.role', () => {
    // Prepare
    const functions: Record<string, FunctionDefinition> = {
      inherits: { handler: 'a.handler' },
      names: { handler: 'b.handler', role: 'CeleryFunctionRole' },
      other: { handler: 'c.handler', role: 'AdminRole' },
    };

    // Act
    const withProvider = functionsOfCeleryRole(functions, 'CeleryFunctionRole');
    const without = functionsOfCeleryRole(functions, undefined);

    // Assess
    expect(withProvider).toEqual([functions.inherits, functions.names]);
    expect(without).toEqual([functions.names]);
  });
});

describe('openIamRoutes', () => {
  it('removes aws_iam authorizers of httpApi routes, in every form, and nothing else', () => {
    // Prepare
    const jwt = { name: 'cognito' };
    const functions: Record<string, FunctionDefinition> = {
      api: {
        events: [
          { httpApi: { method: 'post', path: '/events', authorizer: { type: 'aws_iam' } } },
          { httpApi: { method: 'GET', path: '/events/{id}', authorizer: 'AWS_IAM' } },
          { httpApi: { method: 'GET', path: '/me', authorizer: jwt } },
          { httpApi: 'GET /health' },
          { schedule: 'rate(1 minute)' },
        ],
      },
    };

    // Act
    const opened = openIamRoutes(functions);

    // Assess
    expect(opened).toEqual(['POST /events', 'GET /events/{id}']);
    expect(functions.api?.events).toEqual([
      { httpApi: { method: 'post', path: '/events' } },
      { httpApi: { method: 'GET', path: '/events/{id}' } },
      { httpApi: { method: 'GET', path: '/me', authorizer: jwt } },
      { httpApi: 'GET /health' },
      { schedule: 'rate(1 minute)' },
    ]);
  });
});

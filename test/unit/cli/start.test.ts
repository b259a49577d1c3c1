import { describe, expect, it } from 'vitest';
import { DEMO_APP, demoStoreUrl, startArgv } from '../../../src/cli/start.js';

describe('demoStoreUrl', () => {
  it.each([
    [{}, 'redis://127.0.0.1:6379/0'],
    [{ BROKER_URL: 'redis://127.0.0.1:6379/5' }, 'redis://127.0.0.1:6379/5'],
    [{ BROKER_URL: 'amqp://guest:guest@127.0.0.1:5672/' }, 'redis://127.0.0.1:6379/0'],
    [
      { BROKER_URL: 'amqp://guest:guest@127.0.0.1:5672/', STORE_URL: 'redis://127.0.0.1:6379/5' },
      'redis://127.0.0.1:6379/5',
    ],
  ])('stores the events of %j in %s', (env, url) => {
    expect(demoStoreUrl(env)).toBe(url);
  });
});

describe('startArgv', () => {
  it("runs dev for the demo on serverless-offline's usual ports, its store as a param", () => {
    expect(startArgv('redis://127.0.0.1:6379/5')).toEqual([
      'dev',
      '--app',
      DEMO_APP,
      '--http-port',
      '3000',
      '--lambda-port',
      '3002',
      '--param',
      'storeUrl=redis://127.0.0.1:6379/5',
    ]);
  });
});

import { afterEach, describe, expect, it, vi } from 'vitest';
import { createResultBackend } from '../../../src/brokers/create-result-backend.js';
import { RedisResultBackend } from '../../../src/brokers/redis/redis-result-backend.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

// The plugin's esbuild `define` replaces this variable; unbundled it is an ordinary environment
// variable, read the same way.
const VARIABLE = 'SERVERLESS_CELERY_RESULTS';

describe('createResultBackend', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it.each([undefined, 'redis'])('creates the Redis backend when the build is %s', async (build) => {
    // Prepare
    if (build !== undefined) vi.stubEnv(VARIABLE, build);

    // Act
    const backend = createResultBackend('redis://127.0.0.1:6379/3?global_keyprefix=app');

    // Assess
    expect(backend).toBeInstanceOf(RedisResultBackend);
    expect(backend.config.keyPrefix).toBe('app');
    await backend.close();
  });

  it('refuses in a build without results and says how to build one', () => {
    // Prepare
    vi.stubEnv(VARIABLE, 'none');

    // Act
    const create = () => createResultBackend('redis://127.0.0.1:6379/3');

    // Assess
    expect(create).toThrow(InvalidConfigError);
    expect(create).toThrow('url: results are not in this build');
    expect(create).toThrow('custom.celery.resultBackend');
  });
});

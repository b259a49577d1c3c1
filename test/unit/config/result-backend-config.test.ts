import { describe, expect, it } from 'vitest';
import {
  parseResultBackendConfig,
  resultBackendConfigFromEnv,
} from '../../../src/config/result-backend-config.js';
import { InvalidConfigError } from '../../../src/core/errors.js';

describe('result backend options', () => {
  it('stores neither extended fields nor STARTED by default, as Celery', () => {
    expect(parseResultBackendConfig('redis://h:6379/0')).toMatchObject({
      extended: false,
      trackStarted: false,
    });
  });

  it.each([
    ['true', true],
    ['True', true],
    ['1', true],
    ['false', false],
    ['0', false],
  ])('reads result_extended=%s and task_track_started off RESULT_BACKEND', (value, expected) => {
    // Prepare
    const env = {
      RESULT_BACKEND: `redis://h:6379/2?result_extended=${value}&task_track_started=${value}`,
    };

    // Act
    const config = resultBackendConfigFromEnv(env);

    // Assess
    expect(config).toEqual({
      url: 'redis://h:6379/2',
      keyPrefix: '',
      expiresSeconds: 86_400,
      extended: expected,
      trackStarted: expected,
    });
  });

  it('keeps query parameters that are not settings on the URL', () => {
    const config = parseResultBackendConfig(
      'rediss://h:6380/0?ssl_cert_reqs=none&result_extended=1',
    );
    expect(config.url).toBe('rediss://h:6380/0?ssl_cert_reqs=none');
    expect(config.extended).toBe(true);
  });

  it('takes the options as an object', () => {
    const config = parseResultBackendConfig({
      url: 'redis://h',
      extended: true,
      trackStarted: true,
    });
    expect(config).toMatchObject({ extended: true, trackStarted: true });
  });

  it('refuses a flag that is not a boolean, naming it', () => {
    // Act
    const attempt = () => parseResultBackendConfig('redis://h/0?result_extended=yes please');

    // Assess
    expect(attempt).toThrow(InvalidConfigError);
    expect(attempt).toThrow(/extended/);
  });

  it('refuses a typo in the object, as every hand-written option', () => {
    const typo = { url: 'redis://h', extendd: true } as unknown as { url: string };
    expect(() => parseResultBackendConfig(typo)).toThrow(/extendd/);
  });
});

import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.ts';

/** The message of the ConfigError `env` is refused with. */
const refusal = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('the configuration was accepted');
};

describe('loadConfig', () => {
  it('takes an empty variable as not set', () => {
    const config = loadConfig({ PORT: '', TABLE_NAME: '', LOG_LEVEL: '', API_KEYS: '' });

    expect({ port: config.PORT, table: config.TABLE_NAME, level: config.LOG_LEVEL, keys: config.API_KEYS }).toEqual({
      port: 3000,
      table: 'orders',
      level: 'INFO',
      keys: [],
    });
  });

  it('reads a log level in any case', () => {
    expect(loadConfig({ LOG_LEVEL: 'debug' }).LOG_LEVEL).toBe('DEBUG');
  });

  it('parses API_KEYS into keys', () => {
    const hash = 'ab'.repeat(32);
    const [key, ...rest] = loadConfig({ API_KEYS: `reader:orders:read:${hash}` }).API_KEYS;

    expect(rest).toEqual([]);
    expect({ name: key?.name, scopes: [...(key?.scopes ?? [])], hash: key?.hash.toString('hex') }).toEqual({ name: 'reader', scopes: ['orders:read'], hash });
  });

  it('names a malformed API_KEYS with what is wrong in it', () => {
    expect(refusal({ API_KEYS: 'reader:orders:read:not-a-hash' })).toBe(
      'Invalid configuration:\n  API_KEYS: API key "reader" must give the SHA-256 of the key as 64 hex digits',
    );
  });

  it('names every bad setting, one line each', () => {
    expect(refusal({ PORT: '70000', PROCESSING_CONCURRENCY: 'lots' }).split('\n')).toEqual([
      'Invalid configuration:',
      expect.stringMatching(/^ {2}PORT: \S/),
      expect.stringMatching(/^ {2}PROCESSING_CONCURRENCY: \S/),
    ]);
  });

  describe('processing times against each other', () => {
    it('accepts a fixed processing time (minimum equal to maximum)', () => {
      expect(loadConfig({ PROCESSING_MIN_MS: '700', PROCESSING_MAX_MS: '700' })).toMatchObject({ PROCESSING_MIN_MS: 700, PROCESSING_MAX_MS: 700 });
    });

    it('refuses a minimum above the maximum', () => {
      expect(refusal({ PROCESSING_MIN_MS: '701', PROCESSING_MAX_MS: '700' })).toBe(
        'Invalid configuration:\n  PROCESSING_MIN_MS: must not be above PROCESSING_MAX_MS',
      );
    });

    it('accepts a lease just longer than the longest processing', () => {
      expect(loadConfig({ PROCESSING_MAX_MS: '700', LEASE_MS: '701' }).LEASE_MS).toBe(701);
    });

    it('refuses a lease no longer than the longest processing, which would take over work in progress', () => {
      expect(refusal({ PROCESSING_MAX_MS: '700', LEASE_MS: '700' })).toBe(
        'Invalid configuration:\n  LEASE_MS: must be longer than PROCESSING_MAX_MS, or work in progress would be taken over',
      );
    });
  });
});

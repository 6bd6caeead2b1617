import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../lib/logger.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

/** The JSON lines the logger writes to stdout while `log` runs. */
const linesOf = (log: () => void): Record<string, unknown>[] => {
  const written: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  log();
  vi.mocked(process.stdout.write).mockRestore();
  return written.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
};

describe('the logger', () => {
  // The test environment sets LOG_LEVEL=WARN, which the logger would fall back to: the level given must win.
  it('logs at the level the settings give, as JSON lines with the service name and the fields of the call', () => {
    const logger = createLogger({ SERVICE_NAME: 'orders-under-test', LOG_LEVEL: 'DEBUG' });

    const lines = linesOf(() => logger.debug('a debug line', { order_id: 'LOG-1' }));

    expect(logger.getLevelName()).toBe('DEBUG');
    expect(lines).toEqual([expect.objectContaining({ level: 'DEBUG', message: 'a debug line', service: 'orders-under-test', order_id: 'LOG-1' })]);
  });
});

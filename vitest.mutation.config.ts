import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

// What Stryker runs against each mutant of lib/: the in-process unit and integration tests. The end-to-end,
// deploy and chaos tests start the service as a child process, which never loads a mutant.
export default defineConfig({ ...base, test: { ...base.test, include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'] } });

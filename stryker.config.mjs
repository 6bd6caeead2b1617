// @ts-check
/** Mutation testing of lib/ (the web pages aside): `npm run test:mutation`. See README, Mutation testing. */
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts' },
  mutate: ['lib/**/*.ts', '!lib/web/**'],
  coverageAnalysis: 'perTest',
  // Each runner has its own vitest and DynamoDB Local. The tests mostly wait on the store and on their polls
  // (two runners kept two cores 40% busy), so four runners on two cores.
  concurrency: 4,
  timeoutMS: 10_000,
  // A mutant of a module-level constant runs every related test file (half a minute each here): those are
  // left out of the score, so a run of lib/ fits in CI's budget. README, Mutation testing, counts them.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // Stryker rewrites the tsconfig's references with TypeScript's JavaScript API, which TypeScript 7 no longer
  // has; this tsconfig has no references or extends to rewrite, so it is left alone. (For the same reason there
  // is no @stryker-mutator/typescript-checker.)
  tsconfigFile: 'no-tsconfig-to-rewrite.json',
};

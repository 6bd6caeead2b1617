import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeProfile } from '../../local/cpuProfile.ts';

const dir = await mkdtemp(join(tmpdir(), 'cpuprofile-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const frame = (id: number, functionName: string, url: string, lineNumber = 0) => ({ id, callFrame: { functionName, url, lineNumber } });
const ours = pathToFileURL(join(process.cwd(), 'lib', 'http.ts')).href;

describe('summarizeProfile', () => {
  it('sums self time by origin and by function, the heaviest first', async () => {
    const file = join(dir, 'app.cpuprofile');
    await writeFile(
      file,
      JSON.stringify({
        nodes: [
          frame(1, '(idle)', ''),
          frame(2, 'parse', 'file:///app/node_modules/zod/v4/core/schemas.js', 9),
          frame(3, 'send', 'file:///app/node_modules/@aws-sdk/lib-dynamodb/dist-cjs/index.js', 41),
          frame(4, 'writev', ''),
          frame(5, 'readJsonBody', ours, 19),
          frame(6, 'emit', 'node:events'),
          frame(7, '(garbage collector)', ''),
        ],
        samples: [1, 1, 2, 3, 2, 4, 5, 6, 7, 1],
        timeDeltas: [4000, 4000, 1000, 3000, 1000, 500, 2000, 1500, 1000, 2000],
      }),
    );

    const summary = await summarizeProfile(file, 4);

    expect(summary.sampled_ms).toBe(20);
    expect(summary.by_origin).toEqual([
      { name: '(idle)', ms: 10, share: 0.5 },
      { name: '@aws-sdk/lib-dynamodb', ms: 3, share: 0.15 },
      { name: 'zod', ms: 2, share: 0.1 },
      { name: 'lib/http.ts', ms: 2, share: 0.1 },
    ]);
    expect(summary.by_function.map(({ name }) => name)).toEqual([
      '(idle) (idle)',
      'send @aws-sdk/lib-dynamodb/dist-cjs/index.js:42',
      'parse zod/v4/core/schemas.js:10',
      'readJsonBody lib/http.ts:20',
    ]);
  });
});

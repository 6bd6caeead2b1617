import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { expect, it } from 'vitest';
import { httpHandler, json } from '../../lib/http.ts';

// A file of its own: each test file runs in a process of its own, and this one's first request is the process's.
it('says cold start on the first request the process serves, and on none after it', async () => {
  const coldStarts: unknown[] = [];
  const logger = { info: (_message: string, fields: { cold_start: unknown }) => void coldStarts.push(fields.cold_start) } as unknown as Logger;
  const handle = httpHandler(() => logger, () => 10_000, async () => json(200, {}));
  const event = { rawPath: '/health', headers: {} } as unknown as APIGatewayProxyEventV2;

  for (let request = 0; request < 3; request++) await handle(event);

  expect(coldStarts).toEqual([true, false, false]);
});

import { json } from '../lib/http.ts';
import { getServices, httpFunction } from '../lib/services.ts';

/** GET /health: 200 when the store answers; a StoreUnavailable becomes 503. */
export const handler = httpFunction('health', async () => {
  await getServices().orders.ping();
  return json(200, { status: 'ok' });
});

import { json } from '../lib/http.ts';
import { readMetrics } from '../lib/metrics.ts';
import { getServices, httpFunction } from '../lib/services.ts';

/** GET /metrics */
export const handler = httpFunction('getMetrics', async () => json(200, await readMetrics(getServices().store)));

import { json } from '../lib/http.ts';
import { getServices, httpFunction } from '../lib/services.ts';

/** GET /orders?user_id=&limit=&cursor= (a user's orders, newest first). */
export const handler = httpFunction('listOrders', async (event) => json(200, await getServices().orderService.list(event.queryStringParameters ?? {})));

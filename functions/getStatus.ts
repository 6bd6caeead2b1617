import { json } from '../lib/http.ts';
import { getServices, httpFunction } from '../lib/services.ts';

/** GET /orders/{order_id} (the whole order) and GET /orders/{order_id}/status (just the status). */
export const handler = httpFunction('getStatus', async (event) => {
  const order = await getServices().orderService.get(event.pathParameters?.order_id);
  return event.routeKey.endsWith('/status') ? json(200, { order_id: order.order_id, status: order.status }) : json(200, order);
});

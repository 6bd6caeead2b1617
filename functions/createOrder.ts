import { json, readJsonBody } from '../lib/http.ts';
import { getServices, httpFunction } from '../lib/services.ts';

/** POST /orders */
export const handler = httpFunction('createOrder', async (event) => {
  const { created, order } = await getServices().orderService.create(readJsonBody(event));
  return created
    ? json(201, order, { location: `/orders/${encodeURIComponent(order.order_id)}` })
    : json(200, order);
});

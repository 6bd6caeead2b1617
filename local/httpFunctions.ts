import type { HttpHandler } from '../lib/http.ts';
import type { HandlerName } from '../lib/routes.ts';
import { handler as apiDocs } from '../functions/apiDocs.ts';
import { handler as createOrder } from '../functions/createOrder.ts';
import { handler as dashboard } from '../functions/dashboard.ts';
import { handler as getMetrics } from '../functions/getMetrics.ts';
import { handler as getStatus } from '../functions/getStatus.ts';
import { handler as health } from '../functions/health.ts';
import { handler as listOrders } from '../functions/listOrders.ts';
import { handler as notFound } from '../functions/notFound.ts';

/** The HTTP functions by name, for runtimes that route requests themselves. */
export const httpFunctions: Record<HandlerName | 'notFound', HttpHandler> = {
  createOrder,
  listOrders,
  getStatus,
  getMetrics,
  health,
  apiDocs,
  dashboard,
  notFound,
};

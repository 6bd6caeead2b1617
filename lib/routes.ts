import type { Scope } from './auth.ts';

/**
 * The HTTP API: each route, the function that serves it (serverless.yml declares the same), and the
 * scope an API key needs for it (null: public). The pages are public but hold nothing: what the dashboard
 * and the API reference show comes from the API (/metrics, /openapi.json...), with the key the reader enters.
 */
export const ROUTES = [
  { method: 'POST', path: '/orders', handler: 'createOrder', scope: 'orders:write' },
  { method: 'GET', path: '/orders', handler: 'listOrders', scope: 'orders:read' },
  { method: 'GET', path: '/orders/{order_id}', handler: 'getStatus', scope: 'orders:read' },
  { method: 'GET', path: '/orders/{order_id}/status', handler: 'getStatus', scope: 'orders:read' },
  { method: 'GET', path: '/metrics', handler: 'getMetrics', scope: 'metrics:read' },
  { method: 'GET', path: '/health', handler: 'health', scope: null },
  { method: 'GET', path: '/openapi.json', handler: 'apiDocs', scope: 'metrics:read' },
  { method: 'GET', path: '/', handler: 'dashboard', scope: null },
  { method: 'GET', path: '/docs', handler: 'dashboard', scope: null },
  { method: 'GET', path: '/assets/{name}', handler: 'dashboard', scope: null },
] as const satisfies readonly { method: string; path: string; handler: string; scope: Scope | null }[];

export type Route = (typeof ROUTES)[number];

export type HandlerName = Route['handler'];
/** An HTTP function: the handler of some routes, or notFound, which serves API Gateway's `$default` route. */
export type FunctionName = HandlerName | 'notFound';

/**
 * The scope a route key (`GET /orders/{order_id}`) needs when the function `name` serves it (null: public);
 * undefined when that function serves no such route, as for an event made by hand (serverless-offline's
 * invoke endpoint takes any event for any function): such a request is refused, never public.
 */
export const scopeOf = (name: FunctionName, routeKey: string): Scope | null | undefined =>
  name === 'notFound'
    ? routeKey === '$default'
      ? null
      : undefined
    : ROUTES.find((route) => route.handler === name && `${route.method} ${route.path}` === routeKey)?.scope;

export type RouteMatch =
  | { kind: 'route'; route: Route; pathParameters: Record<string, string> }
  | { kind: 'wrong-method'; allowed: string[] }
  | { kind: 'no-route' };

const segmentsOf = (path: string) => path.split('/').slice(1);

/** Matches a decoded path against a route template; returns its parameters, or undefined. */
const matchPath = (template: string, segments: string[]): Record<string, string> | undefined => {
  const parts = segmentsOf(template);
  if (parts.length !== segments.length) return undefined;
  const parameters: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i]!;
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (name) {
      if (segment === '') return undefined;
      parameters[name] = segment;
    } else if (part !== segment) return undefined;
  }
  return parameters;
};

/**
 * Finds the route for a request as API Gateway would, and tells a known path with the wrong method
 * (405, with the methods allowed) from an unknown path (404). Path segments are percent-decoded.
 */
export const matchRoute = (method: string, rawPath: string): RouteMatch => {
  let segments: string[];
  try {
    segments = segmentsOf(rawPath).map(decodeURIComponent);
  } catch {
    return { kind: 'no-route' };
  }
  const allowed: string[] = [];
  for (const route of ROUTES) {
    const pathParameters = matchPath(route.path, segments);
    if (!pathParameters) continue;
    if (route.method === method) return { kind: 'route', route, pathParameters };
    allowed.push(route.method);
  }
  return allowed.length > 0 ? { kind: 'wrong-method', allowed } : { kind: 'no-route' };
};

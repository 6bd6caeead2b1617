import { describe, expect, it } from 'vitest';
import { matchRoute, ROUTES, scopeOf, type RouteMatch } from '../../lib/routes.ts';

const route = (method: string, path: string, pathParameters: Record<string, string> = {}): RouteMatch => {
  const found = ROUTES.find((r) => r.method === method && r.path === path);
  if (!found) throw new Error(`no route ${method} ${path}`);
  return { kind: 'route', route: found, pathParameters };
};

describe('matchRoute', () => {
  it.each<[string, string, RouteMatch]>([
    ['POST', '/orders', route('POST', '/orders')],
    ['GET', '/orders', route('GET', '/orders')],
    ['GET', '/orders/ORD001', route('GET', '/orders/{order_id}', { order_id: 'ORD001' })],
    ['GET', '/orders/ORD001/status', route('GET', '/orders/{order_id}/status', { order_id: 'ORD001' })],
    ['GET', '/metrics', route('GET', '/metrics')],
    ['GET', '/health', route('GET', '/health')],
    ['GET', '/openapi.json', route('GET', '/openapi.json')],
    ['GET', '/docs', route('GET', '/docs')],
    ['GET', '/', route('GET', '/')],
    ['GET', '/assets/app.css', route('GET', '/assets/{name}', { name: 'app.css' })],
  ])('matches %s %s', (method, path, match) => {
    expect(matchRoute(method, path)).toEqual(match);
  });

  it('serves each route with the handler it names', () => {
    expect(
      ROUTES.map((r) => {
        const match = matchRoute(r.method, r.path.replace('{order_id}', 'ORD001').replace('{name}', 'app.css'));
        return match.kind === 'route' ? `${r.method} ${r.path} -> ${match.route.handler}` : match.kind;
      }),
    ).toEqual([
      'POST /orders -> createOrder',
      'GET /orders -> listOrders',
      'GET /orders/{order_id} -> getStatus',
      'GET /orders/{order_id}/status -> getStatus',
      'GET /metrics -> getMetrics',
      'GET /health -> health',
      'GET /openapi.json -> apiDocs',
      'GET / -> dashboard',
      'GET /docs -> dashboard',
      'GET /assets/{name} -> dashboard',
    ]);
  });

  it('takes an order id with every character the id pattern allows', () => {
    expect(matchRoute('GET', '/orders/a-Z_0.9:x/status')).toEqual(
      route('GET', '/orders/{order_id}/status', { order_id: 'a-Z_0.9:x' }),
    );
  });

  describe('percent-encoding', () => {
    it.each([
      ['a space', '/orders/ORD%20001', 'ORD 001'],
      ['a plain letter', '/orders/%4FRD001', 'ORD001'],
      ['a multi-byte character', '/orders/ord%C3%A9', 'ordé'],
      ['an encoded percent sign', '/orders/100%25', '100%'],
    ])('decodes %s in a path parameter', (_, path, orderId) => {
      expect(matchRoute('GET', path)).toEqual(route('GET', '/orders/{order_id}', { order_id: orderId }));
    });

    it('keeps an encoded slash inside its segment', () => {
      expect([matchRoute('GET', '/orders/a%2Fb'), matchRoute('GET', '/orders/a%2fb/status')]).toEqual([
        route('GET', '/orders/{order_id}', { order_id: 'a/b' }),
        route('GET', '/orders/{order_id}/status', { order_id: 'a/b' }),
      ]);
    });

    it('does not split a segment at an encoded slash to reach another route', () => {
      expect([matchRoute('GET', '/orders/ORD001%2Fstatus'), matchRoute('POST', '/orders%2F')]).toEqual([
        route('GET', '/orders/{order_id}', { order_id: 'ORD001/status' }),
        { kind: 'no-route' },
      ]);
    });

    it('decodes fixed segments too', () => {
      expect(matchRoute('GET', '/%6Detrics')).toEqual(route('GET', '/metrics'));
    });

    it.each([
      ['a lone percent sign', '/orders/%'],
      ['a percent sign with one digit', '/orders/%4'],
      ['a percent sign without hex digits', '/orders/%zz'],
      ['a truncated multi-byte sequence', '/orders/%E0%A4%A'],
      ['bytes that are not UTF-8', '/orders/%FF'],
      ['a bad fixed segment', '/metr%ics'],
    ])('answers no-route to %s', (_, path) => {
      expect(matchRoute('GET', path)).toEqual({ kind: 'no-route' });
    });
  });

  describe('wrong method', () => {
    it.each<[string, string, string[]]>([
      ['DELETE', '/orders', ['POST', 'GET']],
      ['PUT', '/orders', ['POST', 'GET']],
      ['POST', '/orders/ORD001', ['GET']],
      ['DELETE', '/orders/ORD001/status', ['GET']],
      ['POST', '/metrics', ['GET']],
      ['POST', '/health', ['GET']],
      ['get', '/health', ['GET']],
      ['POST', '/', ['GET']],
    ])('answers %s %s with the allowed methods', (method, path, allowed) => {
      expect(matchRoute(method, path)).toEqual({ kind: 'wrong-method', allowed });
    });
  });

  describe('unknown paths', () => {
    it.each([
      ['an empty path', ''],
      ['an unknown path', '/nope'],
      ['an unknown path under a known one', '/orders/ORD001/items'],
      ['a deeper path', '/orders/ORD001/status/extra'],
      ['a trailing slash on /orders', '/orders/'],
      ['a trailing slash on an order', '/orders/ORD001/'],
      ['a trailing slash on /metrics', '/metrics/'],
      ['a trailing slash on /health', '/health/'],
      ['an empty order id', '/orders//status'],
      ['a path in another case', '/Metrics'],
    ])('answers no-route to %s', (_, path) => {
      expect([matchRoute('GET', path), matchRoute('POST', path)]).toEqual([{ kind: 'no-route' }, { kind: 'no-route' }]);
    });
  });
});

describe('scopeOf', () => {
  it('gives each function the scope of every route it serves, and notFound the public $default', () => {
    expect(ROUTES.map((r) => scopeOf(r.handler, `${r.method} ${r.path}`))).toEqual(ROUTES.map((r) => r.scope));
    expect(scopeOf('notFound', '$default')).toBeNull();
  });

  it.each([
    ['getStatus', '$default'],
    ['getStatus', 'GET /metrics'],
    ['createOrder', 'GET /orders'],
    ['dashboard', 'GET /orders/{order_id}'],
    ['health', 'GET /health/'],
    ['notFound', 'GET /orders'],
  ] as const)('knows no scope for %s with the route key %s, which it does not serve', (name, routeKey) => {
    expect(scopeOf(name, routeKey)).toBeUndefined();
  });
});

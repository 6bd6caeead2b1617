import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { OrderSchema, type MetricsSchema, type OrderListSchema } from '../../lib/apiSchemas.ts';
import type { Metrics } from '../../lib/metrics.ts';
import { ORDER_VIEW_FIELDS, parseOrderInput, type Order } from '../../lib/order.ts';
import { parseListOrdersQuery } from '../../lib/orderListQuery.ts';
import type { OrderPage } from '../../lib/orderService.ts';
import { openApiDocument, type JsonSchema, type MediaType, type Parameter, type Response } from '../../lib/openapi.ts';
import { ROUTES } from '../../lib/routes.ts';
import { OpenApiValidator } from '../openapiValidator.ts';

// The types the code returns and the schemas the document is made of must not drift apart: a field added
// to one and not the other fails tsc, which `npm test` runs before vitest (these are no-ops at run time).
expectTypeOf<Order>().toEqualTypeOf<z.output<typeof OrderSchema>>();
expectTypeOf<Metrics>().toEqualTypeOf<z.output<typeof MetricsSchema>>();
expectTypeOf<OrderPage>().toEqualTypeOf<z.output<typeof OrderListSchema>>();

const document = openApiDocument();

it('lists the fields of an order, which list reads project, as the response schema documents them', () => {
  expect(ORDER_VIEW_FIELDS).toEqual(Object.keys(OrderSchema.shape));
});
const validator = new OpenApiValidator(document);

const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
);

const pointer = (...parts: string[]) => parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

/** Every place in the document where an example sits next to the schema it illustrates. */
const examples = (): { where: string; schemaPointer: string; example: unknown }[] => {
  const found: { where: string; schemaPointer: string; example: unknown }[] = [];
  for (const [name, schema] of Object.entries(document.components.schemas)) {
    for (const [i, example] of ((schema.examples as unknown[]) ?? []).entries()) {
      found.push({ where: `schema ${name} example ${i}`, schemaPointer: pointer('', 'components', 'schemas', name), example });
    }
  }
  const mediaTypes = (base: string, content: Record<string, MediaType> = {}) =>
    Object.entries(content)
      .filter(([, media]) => media.example !== undefined)
      .map(([type, media]) => ({ where: `${base} ${type}`, schemaPointer: `${base}/${pointer('content', type, 'schema')}`, example: media.example }));
  for (const [name, response] of Object.entries(document.components.responses)) {
    found.push(...mediaTypes(pointer('', 'components', 'responses', name), response.content));
  }
  for (const { path, method, operation } of operations) {
    const base = pointer('', 'paths', path, method);
    found.push(...mediaTypes(`${base}/requestBody`, operation.requestBody?.content));
    for (const [status, response] of Object.entries(operation.responses)) {
      if (!('$ref' in response)) found.push(...mediaTypes(`${base}/${pointer('responses', status)}`, (response as Response).content));
    }
    for (const [i, parameter] of (operation.parameters ?? []).entries()) {
      if (parameter.example !== undefined) {
        found.push({ where: `${base} parameter ${parameter.name}`, schemaPointer: `${base}/parameters/${i}/schema`, example: parameter.example });
      }
    }
  }
  return found;
};

/** Every $ref anywhere in the document. */
const refs = (node: unknown): string[] =>
  !node || typeof node !== 'object'
    ? []
    : Object.entries(node).flatMap(([key, value]) => (key === '$ref' && typeof value === 'string' ? [value] : refs(value)));

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with JSON Schema 2020-12 schemas', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const schema of Object.values(document.components.schemas)) {
      expect(schema).not.toHaveProperty('$schema');
      expect(schema).not.toHaveProperty('$id');
    }
  });

  it('documents exactly the routes the service serves', () => {
    const documented = operations.map(({ path, method }) => `${method.toUpperCase()} ${path}`).sort();
    expect(documented).toEqual(ROUTES.map((route) => `${route.method} ${route.path}`).sort());
  });

  it('gives every operation an id, a summary, a success, a 500 and problem JSON for every error', () => {
    expect(new Set(operations.map(({ operation }) => operation.operationId)).size).toBe(operations.length);
    for (const { operation } of operations) {
      expect(operation.summary).toEqual(expect.any(String));
      expect(Object.keys(operation.responses).some((status) => status.startsWith('2'))).toBe(true);
      expect(operation.responses).toHaveProperty('500');
      for (const [status, response] of Object.entries(operation.responses)) {
        const { content = {}, headers = {} } = validator.resolve<Response>(response);
        expect(headers).toHaveProperty('x-request-id');
        if (Number(status) >= 400) expect(Object.keys(content)).toEqual(['application/problem+json']);
      }
    }
  });

  it('names the scope of every protected route, as the service enforces it, with its 401 and 403', () => {
    for (const route of ROUTES) {
      const operation = document.paths[route.path]![route.method.toLowerCase()]!;
      if (route.scope === null) {
        expect(operation.security, route.path).toEqual([]);
        expect(operation.responses).not.toHaveProperty('401');
      } else {
        expect(operation.security).toEqual([{ bearerKey: [route.scope] }, { headerKey: [route.scope] }]);
        expect(operation.responses).toMatchObject({
          '401': { $ref: '#/components/responses/Unauthorized' },
          '403': { $ref: '#/components/responses/Forbidden' },
        });
      }
    }
    expect(Object.keys(document.components.securitySchemes)).toEqual(['bearerKey', 'headerKey']);
  });

  it('documents the path parameters of every templated path', () => {
    for (const { path, operation } of operations) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      const inPath = (operation.parameters ?? []).filter((p: Parameter) => p.in === 'path').map((p) => p.name);
      expect(inPath, path).toEqual(names);
    }
  });

  it('generates the query parameters of GET /orders from the schema that validates them', () => {
    expect(document.paths['/orders']!.get!.parameters).toEqual([
      { name: 'user_id', in: 'query', required: true, description: expect.any(String), schema: { type: 'string', minLength: 1, maxLength: 128 }, example: 'USER001' },
      { name: 'limit', in: 'query', required: false, description: expect.any(String), schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, example: 20 },
      { name: 'cursor', in: 'query', required: false, description: expect.any(String), schema: { type: 'string' } },
    ]);
  });

  it('resolves every reference', () => {
    const all = refs(document);
    expect(all.length).toBeGreaterThan(20);
    for (const ref of new Set(all)) expect(validator.resolve({ $ref: ref }), ref).toBeDefined();
  });

  it('has examples that conform to their own schemas', () => {
    const found = examples();
    expect(found.length).toBeGreaterThan(20);
    for (const { where, schemaPointer, example } of found) expect(validator.validate(schemaPointer, example), where).toEqual([]);
  });

  it('has request examples that the service accepts', () => {
    for (const example of document.components.schemas.OrderInput!.examples as unknown[]) {
      expect(() => parseOrderInput(example, () => 'GENERATED')).not.toThrow();
    }
    const parameters = document.paths['/orders']!.get!.parameters!;
    const query = Object.fromEntries(parameters.filter((p) => p.example !== undefined).map((p) => [p.name, String(p.example)]));
    expect(parseListOrdersQuery(query)).toEqual({ user_id: 'USER001', limit: 20 });
  });

  it('holds a body to the same rules as the validation, field by field', () => {
    const orderInput = pointer('', 'components', 'schemas', 'OrderInput');
    const valid = { user_id: 'U', item_ids: [1, 'a'], total_amount: 1.5 };
    expect(validator.validate(orderInput, valid)).toEqual([]);
    for (const invalid of [
      { ...valid, colour: 'red' },
      { ...valid, user_id: '' },
      { ...valid, user_id: 'u'.repeat(129) },
      { ...valid, user_id: 1.5 },
      { ...valid, item_ids: [] },
      { ...valid, item_ids: Array(101).fill(1) },
      { ...valid, total_amount: -1 },
      { ...valid, total_amount: 1e12 },
      { ...valid, order_id: 'has space' },
    ]) {
      expect(validator.validate(orderInput, invalid), JSON.stringify(invalid)).not.toEqual([]);
      expect(() => parseOrderInput(invalid, () => 'X')).toThrow();
    }
  });

  it('refuses fields the responses do not document', () => {
    const order = document.components.schemas.Order!.examples[0] as JsonSchema;
    expect(validator.validate(pointer('', 'components', 'schemas', 'Order'), { ...order, history: [] })).not.toEqual([]);
  });
});

import type { Header, JsonSchema, OpenApiDocument, Operation, Parameter, Ref, Response } from './openapi.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** The descriptions' only markup: `code`. */
const prose = (text: string | undefined): string => escape(text ?? '').replace(/`([^`]+)`/g, '<code>$1</code>');

const SCHEMA_PREFIX = '#/components/schemas/';

const anchor = (kind: 'op' | 'schema', name: string) => `${kind}-${name.replace(/[^\w-]/g, '-')}`;

const schemaLink = (ref: string): string => {
  const name = ref.slice(SCHEMA_PREFIX.length);
  return `<a href="#${anchor('schema', name)}">${escape(name)}</a>`;
};

/** A short type: `string`, `integer | null`, `array of Order`, `"PENDING" | "FAILED"`. */
const typeOf = (schema: JsonSchema): string => {
  if (schema.$ref) return schemaLink(schema.$ref);
  if (schema.anyOf) return (schema.anyOf as JsonSchema[]).map(typeOf).join(' | ');
  if (schema.enum) return (schema.enum as unknown[]).map((value) => `<code>${escape(JSON.stringify(value))}</code>`).join(' | ');
  if (schema.const !== undefined) return `<code>${escape(JSON.stringify(schema.const))}</code>`;
  if (schema.type === 'array') return `array of ${schema.items ? typeOf(schema.items) : 'any'}`;
  const types = [schema.type ?? 'any'].flat() as string[];
  return escape(types.join(' | ') + (schema.format ? ` (${schema.format})` : ''));
};

const SAFE = Number.MAX_SAFE_INTEGER;

/** The rules of a schema in words. */
const rulesOf = (schema: JsonSchema): string[] => {
  const rules: string[] = [];
  const range = (low: unknown, high: unknown, unit: string) => {
    if (low !== undefined && high !== undefined) rules.push(`${low}-${high} ${unit}`);
    else if (low !== undefined) rules.push(`at least ${low} ${unit}`);
    else if (high !== undefined) rules.push(`at most ${high} ${unit}`);
  };
  range(schema.minLength, schema.maxLength, 'characters');
  range(schema.minItems, schema.maxItems, 'items');
  if (schema.minimum === -SAFE && schema.maximum === SAFE) rules.push('a safe integer');
  else {
    if (schema.minimum !== undefined) rules.push(`&ge; ${schema.minimum}`);
    if (schema.maximum !== undefined && schema.maximum !== SAFE) rules.push(`&le; ${schema.maximum}`);
  }
  if (schema.exclusiveMaximum !== undefined) rules.push(`&lt; ${schema.exclusiveMaximum}`);
  if (schema.pattern) rules.push(`matches <code>${escape(schema.pattern)}</code>`);
  if (schema.default !== undefined) rules.push(`default <code>${escape(JSON.stringify(schema.default))}</code>`);
  for (const branch of (schema.anyOf as JsonSchema[] | undefined) ?? []) {
    const inner = rulesOf(branch);
    if (inner.length > 0) rules.push(`${escape(String(branch.type))}: ${inner.join(', ')}`);
  }
  if (schema.items && !schema.items.$ref) rules.push(...rulesOf(schema.items).map((rule) => `each: ${rule}`));
  return rules;
};

interface Row {
  name: string;
  schema: JsonSchema;
  required: boolean;
}

/** The fields of an object schema, nested objects flattened into dotted names (`status_counts.PENDING`). */
const rowsOf = (schema: JsonSchema, prefix = ''): Row[] => {
  const required = new Set<string>(schema.required ?? []);
  return Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>).flatMap(([key, property]) => {
    const name = `${prefix}${key}`;
    const row = { name, schema: property, required: required.has(key) };
    if (property.type === 'object' && property.properties) return [row, ...rowsOf(property, `${name}.`)];
    if (property.type === 'array' && property.items?.type === 'object') return [row, ...rowsOf(property.items, `${name}[].`)];
    return [row];
  });
};

const fieldTable = (rows: Row[], firstColumn = 'Field'): string =>
  rows.length === 0
    ? ''
    : `<table class="fields"><thead><tr><th>${firstColumn}</th><th>Type</th><th>Rules</th><th>Description</th></tr></thead><tbody>${rows
        .map(
          ({ name, schema, required }) =>
            `<tr><td><code>${escape(name)}</code>${required ? ' <span class="required">required</span>' : ''}</td><td>${typeOf(schema)}</td><td>${rulesOf(schema).join(', ')}</td><td>${prose(schema.description)}</td></tr>`,
        )
        .join('')}</tbody></table>`;

/** Pretty JSON, with arrays of plain values kept on one line. */
const json = (value: unknown): string =>
  JSON.stringify(value, null, 2).replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\s+/).join(', ')}]`);

const example = (value: unknown): string => (value === undefined ? '' : `<pre>${escape(json(value))}</pre>`);

const statusClass = (status: string) => (status.startsWith('2') ? 'ok' : status.startsWith('4') ? 'client' : 'server');

/** Renders the OpenAPI document as one readable page; everything comes from the document. */
export const renderDocsPage = (document: OpenApiDocument): string => {
  const resolve = <T>(value: T | Ref): T => {
    if (value && typeof value === 'object' && '$ref' in value) {
      const [, section, kind, name] = value.$ref.split('/');
      return (document as any)[section!][kind!][name!] as T;
    }
    return value as T;
  };

  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
  );

  const parameters = (list: Parameter[] = []) =>
    list.length === 0
      ? ''
      : `<h4>Parameters</h4>${fieldTable(
          list.map((p) => ({ name: `${p.name} (${p.in})`, schema: { ...p.schema, description: p.description }, required: p.required })),
          'Name',
        )}`;

  const media = (content: Record<string, { schema: JsonSchema; example?: unknown }> = {}) =>
    Object.entries(content)
      .map(([type, { schema, example: value }]) => {
        const body = schema.$ref ? `: ${schemaLink(schema.$ref)}` : schema.type === 'string' ? '' : `: ${typeOf(schema)}`;
        return `<div><code>${escape(type)}</code>${body}</div>${example(value)}`;
      })
      .join('');

  const headers = (list: Record<string, Header | Ref> = {}) => {
    const entries = Object.entries(list).filter(([name]) => name !== 'x-request-id');
    return entries.length === 0
      ? ''
      : `<div class="muted">Headers: ${entries.map(([name, header]) => `<code>${escape(name)}</code> ${prose(resolve(header).description)}`).join('; ')}</div>`;
  };

  /** Which API key an operation needs, from its security requirements. */
  const access = ({ security = [] }: Operation) => {
    const scopes = [...new Set(security.flatMap((requirement) => Object.values(requirement).flat()))];
    return scopes.length === 0
      ? '<p class="muted">Public: no API key needed.</p>'
      : `<p class="auth">Needs an API key with the ${scopes.map((scope) => `<code>${escape(scope)}</code>`).join(', ')} scope, as ${Object.values(
          document.components.securitySchemes,
        )
          .map((scheme) => (scheme.type === 'http' ? '<code>Authorization: Bearer &lt;key&gt;</code>' : `<code>${escape(scheme.name)}: &lt;key&gt;</code>`))
          .join(' or ')}.</p>`;
  };

  /** The body's fields in place, as the reader needs them to write a request. */
  const requestBody = ({ required, content }: NonNullable<Operation['requestBody']>) =>
    `<h4>Request body${required ? ' <span class="required">required</span>' : ''}</h4>${media(content)}${Object.values(content)
      .map(({ schema }) => fieldTable(rowsOf(resolve<JsonSchema>(schema))))
      .join('')}`;

  const responses = (operation: Operation) =>
    Object.entries(operation.responses)
      .map(([status, reference]) => {
        const response = resolve<Response>(reference);
        return `<div class="response"><span class="status ${statusClass(status)}">${escape(status)}</span> ${prose(response.description)}${headers(response.headers)}${media(response.content)}</div>`;
      })
      .join('');

  const operationSection = ({ path, method, operation }: (typeof operations)[number]) => `
<section class="operation" id="${anchor('op', operation.operationId)}">
  <h3><span class="method ${escape(method)}">${escape(method.toUpperCase())}</span><code>${escape(path)}</code> ${escape(operation.summary)}</h3>
  ${operation.description ? `<p>${prose(operation.description)}</p>` : ''}
  ${access(operation)}
  ${parameters(operation.parameters)}
  ${operation.requestBody ? requestBody(operation.requestBody) : ''}
  <h4>Responses</h4>${responses(operation)}
</section>`;

  const schemaSection = ([name, schema]: [string, JsonSchema]) => `
<section class="schema" id="${anchor('schema', name)}">
  <h3>${escape(name)}</h3>
  ${schema.description ? `<p>${prose(schema.description)}</p>` : ''}
  ${fieldTable(rowsOf(schema))}
  ${schema.additionalProperties === false ? '<p class="muted">No other fields.</p>' : ''}
  ${example((schema.examples as unknown[] | undefined)?.[0])}
</section>`;

  const byTag = document.tags.map((tag) => ({ tag, operations: operations.filter(({ operation }) => operation.tags.includes(tag.name)) }));
  const schemas = Object.entries(document.components.schemas);

  const nav = `${byTag
    .map(
      ({ tag, operations: list }) =>
        `<h2>${escape(tag.name)}</h2><ul>${list
          .map(({ path, method, operation }) => `<li><a href="#${anchor('op', operation.operationId)}"><span class="method ${escape(method)}">${escape(method.toUpperCase())}</span> ${escape(path)}</a></li>`)
          .join('')}</ul>`,
    )
    .join('')}<h2>Schemas</h2><ul>${schemas.map(([name]) => `<li><a href="#${anchor('schema', name)}">${escape(name)}</a></li>`).join('')}</ul>`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>${escape(document.info.title)} · Reference</title>
<link rel="icon" href="data:," />
<link rel="stylesheet" href="/assets/app.css" />
</head>
<body>
<header class="topbar">
  <h1>Order processing</h1>
  <nav><a href="/">Dashboard</a><a href="/docs" aria-current="page">API reference</a><a href="/openapi.json">OpenAPI</a></nav>
  <p class="version">OpenAPI ${escape(document.openapi)} · v${escape(document.info.version)}</p>
</header>
<div class="docs">
<nav aria-label="Contents">${nav}</nav>
<main>
<h2>${escape(document.info.title)}</h2>
<p>${prose(document.info.description)}</p>
<p class="muted">Every answer carries an <code>x-request-id</code> header. A path the API does not have answers 404, a known path with another method 405 with an <code>Allow</code> header, both as problem JSON. This page and <a href="/openapi.json">/openapi.json</a> are generated from the schemas the service validates with.</p>
${byTag.map(({ tag, operations: list }) => `<h2 id="${anchor('op', `tag-${tag.name}`)}">${escape(tag.name)}</h2><p class="muted">${prose(tag.description)}</p>${list.map(operationSection).join('')}`).join('')}
<h2 id="schemas">Schemas</h2>
${schemas.map(schemaSection).join('')}
</main>
</div>
</body>
</html>
`;
};

// The API reference: reads GET /openapi.json (with the API key of this tab, apiKey.js) and renders it as
// one page. Everything shown comes from the document; every value taken from it is escaped before it is
// placed in markup, and the document itself comes from this service.

import { api, onKey, refusal, showStatus } from './apiKey.js';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

/** The descriptions' only markup: `code`. */
const prose = (text) => escape(text ?? '').replace(/`([^`]+)`/g, '<code>$1</code>');

const SCHEMA_PREFIX = '#/components/schemas/';
const SAFE = Number.MAX_SAFE_INTEGER;

const anchor = (kind, name) => `${kind}-${name.replace(/[^\w-]/g, '-')}`;

const schemaLink = (ref) => {
  const name = ref.slice(SCHEMA_PREFIX.length);
  return `<a href="#${anchor('schema', name)}">${escape(name)}</a>`;
};

/** A short type: `string`, `integer | null`, `array of Order`, `"PENDING" | "FAILED"`. */
const typeOf = (schema) => {
  if (schema.$ref) return schemaLink(schema.$ref);
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' | ');
  if (schema.enum) return schema.enum.map((value) => `<code>${escape(JSON.stringify(value))}</code>`).join(' | ');
  if (schema.const !== undefined) return `<code>${escape(JSON.stringify(schema.const))}</code>`;
  if (schema.type === 'array') return `array of ${schema.items ? typeOf(schema.items) : 'any'}`;
  const types = [schema.type ?? 'any'].flat();
  return escape(types.join(' | ') + (schema.format ? ` (${schema.format})` : ''));
};

/** The rules of a schema in words. */
const rulesOf = (schema) => {
  const rules = [];
  const range = (low, high, unit) => {
    if (low !== undefined && high !== undefined) rules.push(`${low}-${high} ${unit}`);
    else if (low !== undefined) rules.push(`at least ${low} ${unit}`);
    else if (high !== undefined) rules.push(`at most ${high} ${unit}`);
  };
  range(schema.minLength, schema.maxLength, 'characters');
  range(schema.minItems, schema.maxItems, 'items');
  if (schema.minimum === -SAFE && schema.maximum === SAFE) rules.push('a safe integer');
  else {
    if (schema.minimum !== undefined) rules.push(`&ge; ${escape(schema.minimum)}`);
    if (schema.maximum !== undefined && schema.maximum !== SAFE) rules.push(`&le; ${escape(schema.maximum)}`);
  }
  if (schema.exclusiveMaximum !== undefined) rules.push(`&lt; ${escape(schema.exclusiveMaximum)}`);
  if (schema.pattern) rules.push(`matches <code>${escape(schema.pattern)}</code>`);
  if (schema.default !== undefined) rules.push(`default <code>${escape(JSON.stringify(schema.default))}</code>`);
  for (const branch of schema.anyOf ?? []) {
    const inner = rulesOf(branch);
    if (inner.length > 0) rules.push(`${escape(branch.type)}: ${inner.join(', ')}`);
  }
  if (schema.items && !schema.items.$ref) rules.push(...rulesOf(schema.items).map((rule) => `each: ${rule}`));
  return rules;
};

/** The fields of an object schema, nested objects flattened into dotted names (`status_counts.PENDING`). */
const rowsOf = (schema, prefix = '') => {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties ?? {}).flatMap(([key, property]) => {
    const name = `${prefix}${key}`;
    const row = { name, schema: property, required: required.has(key) };
    if (property.type === 'object' && property.properties) return [row, ...rowsOf(property, `${name}.`)];
    if (property.type === 'array' && property.items?.type === 'object') return [row, ...rowsOf(property.items, `${name}[].`)];
    return [row];
  });
};

const fieldTable = (rows, firstColumn = 'Field') =>
  rows.length === 0
    ? ''
    : `<table class="fields"><thead><tr><th>${firstColumn}</th><th>Type</th><th>Rules</th><th>Description</th></tr></thead><tbody>${rows
        .map(
          ({ name, schema, required }) =>
            `<tr><td><code>${escape(name)}</code>${required ? ' <span class="required">required</span>' : ''}</td><td>${typeOf(schema)}</td><td>${rulesOf(schema).join(', ')}</td><td>${prose(schema.description)}</td></tr>`,
        )
        .join('')}</tbody></table>`;

/** Pretty JSON, with arrays of plain values kept on one line. */
const json = (value) => JSON.stringify(value, null, 2).replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, inner) => `[${inner.split(/,\s+/).join(', ')}]`);

const example = (value) => (value === undefined ? '' : `<pre>${escape(json(value))}</pre>`);

const statusClass = (status) => (status.startsWith('2') ? 'ok' : status.startsWith('4') ? 'client' : 'server');

/** The OpenAPI document as the contents (nav) and the reference (main) of the page. */
const render = (document) => {
  const resolve = (value) => {
    if (!value?.$ref) return value;
    const [, section, kind, name] = value.$ref.split('/');
    return document[section][kind][name];
  };

  const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ path, method, operation })),
  );

  const parameters = (list = []) =>
    list.length === 0
      ? ''
      : `<h4>Parameters</h4>${fieldTable(
          list.map((p) => ({ name: `${p.name} (${p.in})`, schema: { ...p.schema, description: p.description }, required: p.required })),
          'Name',
        )}`;

  const media = (content = {}) =>
    Object.entries(content)
      .map(([type, { schema, example: value }]) => {
        const body = schema.$ref ? `: ${schemaLink(schema.$ref)}` : schema.type === 'string' ? '' : `: ${typeOf(schema)}`;
        return `<div><code>${escape(type)}</code>${body}</div>${example(value)}`;
      })
      .join('');

  const headers = (list = {}) => {
    const entries = Object.entries(list).filter(([name]) => name !== 'x-request-id');
    return entries.length === 0
      ? ''
      : `<div class="muted">Headers: ${entries.map(([name, header]) => `<code>${escape(name)}</code> ${prose(resolve(header).description)}`).join('; ')}</div>`;
  };

  /** Which API key an operation needs, from its security requirements. */
  const access = ({ security = [] }) => {
    const scopes = [...new Set(security.flatMap((requirement) => Object.values(requirement).flat()))];
    const ways = Object.values(document.components.securitySchemes)
      .map((scheme) => (scheme.type === 'http' ? '<code>Authorization: Bearer &lt;key&gt;</code>' : `<code>${escape(scheme.name)}: &lt;key&gt;</code>`))
      .join(' or ');
    return scopes.length === 0
      ? '<p class="muted">Public: no API key needed.</p>'
      : `<p class="auth">Needs an API key with the ${scopes.map((scope) => `<code>${escape(scope)}</code>`).join(', ')} scope, as ${ways}.</p>`;
  };

  /** The body's fields in place, as the reader needs them to write a request. */
  const requestBody = ({ required, content }) =>
    `<h4>Request body${required ? ' <span class="required">required</span>' : ''}</h4>${media(content)}${Object.values(content)
      .map(({ schema }) => fieldTable(rowsOf(resolve(schema))))
      .join('')}`;

  const responses = (operation) =>
    Object.entries(operation.responses)
      .map(([status, reference]) => {
        const response = resolve(reference);
        return `<div class="response"><span class="status ${statusClass(status)}">${escape(status)}</span> ${prose(response.description)}${headers(response.headers)}${media(response.content)}</div>`;
      })
      .join('');

  const method = (name) => `<span class="method ${escape(name)}">${escape(name.toUpperCase())}</span>`;

  const operationSection = ({ path, method: name, operation }) => `
<section class="operation" id="${anchor('op', operation.operationId)}">
  <h3>${method(name)}<code>${escape(path)}</code> ${escape(operation.summary)}</h3>
  ${operation.description ? `<p>${prose(operation.description)}</p>` : ''}
  ${access(operation)}
  ${parameters(operation.parameters)}
  ${operation.requestBody ? requestBody(operation.requestBody) : ''}
  <h4>Responses</h4>${responses(operation)}
</section>`;

  const schemaSection = ([name, schema]) => `
<section class="schema" id="${anchor('schema', name)}">
  <h3>${escape(name)}</h3>
  ${schema.description ? `<p>${prose(schema.description)}</p>` : ''}
  ${fieldTable(rowsOf(schema))}
  ${schema.additionalProperties === false ? '<p class="muted">No other fields.</p>' : ''}
  ${example(schema.examples?.[0])}
</section>`;

  const byTag = document.tags.map((tag) => ({ tag, operations: operations.filter(({ operation }) => operation.tags.includes(tag.name)) }));
  const schemas = Object.entries(document.components.schemas);

  const nav = `${byTag
    .map(
      ({ tag, operations: list }) =>
        `<h2>${escape(tag.name)}</h2><ul>${list
          .map(({ path, method: name, operation }) => `<li><a href="#${anchor('op', operation.operationId)}">${method(name)} ${escape(path)}</a></li>`)
          .join('')}</ul>`,
    )
    .join('')}<h2>Schemas</h2><ul>${schemas.map(([name]) => `<li><a href="#${anchor('schema', name)}">${escape(name)}</a></li>`).join('')}</ul>`;

  const main = `
<h2>${escape(document.info.title)}</h2>
<p>${prose(document.info.description)}</p>
<p class="muted">Every answer carries an <code>x-request-id</code> header. A path the API does not have answers 404, a known path with another method 405 with an <code>Allow</code> header, both as problem JSON. This page is drawn from <a href="/openapi.json">/openapi.json</a>, which is generated from the schemas the service validates with.</p>
${byTag.map(({ tag, operations: list }) => `<h2 id="${anchor('op', `tag-${tag.name}`)}">${escape(tag.name)}</h2><p class="muted">${prose(tag.description)}</p>${list.map(operationSection).join('')}`).join('')}
<h2 id="schemas">Schemas</h2>
${schemas.map(schemaSection).join('')}`;

  return { nav, main };
};

const load = async () => {
  try {
    const response = await api('/openapi.json');
    const refused = await refusal(response);
    if (refused) return showStatus('error', refused);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const openapi = await response.json();
    const { nav, main } = render(openapi);
    document.querySelector('#contents').innerHTML = nav;
    document.querySelector('#reference').innerHTML = main;
    document.title = `${openapi.info.title} · API reference`;
    showStatus('ready', `OpenAPI ${openapi.openapi} · v${openapi.info.version}`);
    // The page was empty when the browser looked for the fragment: go to it now.
    if (location.hash) document.getElementById(decodeURIComponent(location.hash.slice(1)))?.scrollIntoView();
  } catch (error) {
    showStatus('error', `cannot read /openapi.json (${error.message})`);
  }
};

onKey(load);
void load();

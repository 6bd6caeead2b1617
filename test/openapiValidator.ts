import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import formatsModule from 'ajv-formats';
import type { JsonSchema, OpenApiDocument, Operation, Ref, Response } from '../lib/openapi.ts';

// ajv-formats is CommonJS: its default export arrives as the module object.
const addFormats = ((formatsModule as unknown as { default?: typeof formatsModule }).default ?? formatsModule) as unknown as (
  ajv: Ajv2020,
) => void;

const DOCUMENT_ID = 'openapi.json';

/** One HTTP answer, as a test saw it. */
export interface Answer {
  method: string;
  /** The path requested, without the query string. */
  path: string;
  status: number;
  contentType: string;
  headers: Headers;
  body: unknown;
}

const pointer = (...parts: string[]) => parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');

const describeErrors = (errors: ErrorObject[] | null | undefined): string[] =>
  (errors ?? []).map((error) => `${error.instancePath || '(root)'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);

/** Validates values and HTTP answers against an OpenAPI 3.1 document, with JSON Schema draft 2020-12. */
export class OpenApiValidator {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });

  constructor(readonly document: OpenApiDocument) {
    addFormats(this.ajv);
    this.ajv.addSchema(document as object, DOCUMENT_ID);
  }

  /** The errors of `value` against the schema at a JSON pointer into the document (empty when it conforms). */
  validate(schemaPointer: string, value: unknown): string[] {
    const validate = this.ajv.getSchema(`${DOCUMENT_ID}#${schemaPointer}`);
    if (!validate) return [`no schema at ${schemaPointer}`];
    return validate(value) ? [] : describeErrors(validate.errors);
  }

  /** Follows a local $ref, if it is one. */
  resolve<T>(value: T | Ref): T {
    if (!value || typeof value !== 'object' || !('$ref' in value)) return value as T;
    const parts = value.$ref.replace(/^#\//, '').split('/').map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
    return parts.reduce<any>((node, part) => node?.[part], this.document) as T;
  }

  /** The documented path template a concrete path matches, e.g. /orders/ORD001 -> /orders/{order_id}. */
  pathTemplate(path: string): string | undefined {
    const segments = path.split('/');
    return Object.keys(this.document.paths).find((template) => {
      const parts = template.split('/');
      return (
        parts.length === segments.length &&
        parts.every((part, i) => /^\{\w+\}$/.test(part) ? segments[i] !== '' : part === segments[i])
      );
    });
  }

  operation(method: string, template: string): Operation | undefined {
    return this.document.paths[template]?.[method.toLowerCase()];
  }

  /**
   * Everything in `answer` that the document does not say: an undocumented path, method or status, a
   * media type the response does not list, a body outside its schema, a required header that is missing.
   * Answers of unknown paths (404) and wrong methods (405) are held to the Problem schema.
   */
  check(answer: Answer): string[] {
    const label = `${answer.method} ${answer.path} -> ${answer.status}`;
    const template = this.pathTemplate(answer.path);
    const operation = template && this.operation(answer.method, template);
    if (!template || !operation) {
      if (![404, 405].includes(answer.status)) return [`${label}: not a documented operation`];
      return this.checkBody(label, '/components/schemas/Problem', answer, 'application/problem+json');
    }
    const response = operation.responses[String(answer.status)];
    if (!response) return [`${label}: status not documented for ${answer.method} ${template}`];
    const { content = {}, headers = {} } = this.resolve<Response>(response);
    const mediaType = Object.keys(content).find((type) => answer.contentType.split(';')[0]!.trim() === type);
    if (!mediaType) return [`${label}: content type ${answer.contentType} is not one of ${Object.keys(content).join(', ')}`];
    const problems = Object.entries(headers)
      .filter(([, header]) => this.resolve(header).required)
      .filter(([name]) => !answer.headers.has(name))
      .map(([name]) => `${label}: header ${name} is missing`);
    const responsePointer = pointer('', 'paths', template, answer.method.toLowerCase(), 'responses', String(answer.status));
    const base = '$ref' in response ? response.$ref.replace(/^#/, '') : responsePointer;
    const schema: JsonSchema = content[mediaType]!.schema;
    if (schema.type === 'string') return problems;
    return [...problems, ...this.checkBody(label, `${base}/${pointer('content', mediaType, 'schema')}`, answer, mediaType)];
  }

  private checkBody(label: string, schemaPointer: string, answer: Answer, mediaType: string): string[] {
    if (!answer.contentType.startsWith(mediaType)) return [`${label}: content type ${answer.contentType}, not ${mediaType}`];
    return this.validate(schemaPointer, answer.body).map((error) => `${label}: ${error}`);
  }
}

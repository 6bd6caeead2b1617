import { json, webContent } from '../lib/http.ts';
import { renderDocsPage } from '../lib/docsPage.ts';
import { openApiDocument } from '../lib/openapi.ts';
import { httpFunction } from '../lib/services.ts';

let page: string | undefined;

/**
 * GET /openapi.json: the OpenAPI 3.1 document, generated from the zod schemas the service validates with;
 * GET /docs: the same document as a readable page.
 */
export const handler = httpFunction(async (event) =>
  event.routeKey === 'GET /docs'
    ? webContent((page ??= renderDocsPage(openApiDocument())), 'text/html; charset=utf-8')
    : json(200, openApiDocument()),
);

import { json } from '../lib/http.ts';
import { openApiDocument } from '../lib/openapi.ts';
import { httpFunction } from '../lib/services.ts';

/** GET /openapi.json: the OpenAPI 3.1 document, generated from the zod schemas the service validates with. */
export const handler = httpFunction('apiDocs', async () => json(200, openApiDocument()));

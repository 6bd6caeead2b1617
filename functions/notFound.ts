import { HttpError } from '../lib/http.ts';
import { matchRoute } from '../lib/routes.ts';
import { httpFunction } from '../lib/services.ts';

/** Every request no route takes: 405 for a known path with another method, 404 otherwise. */
export const handler = httpFunction('notFound', async (event) => {
  const method = event.requestContext.http.method;
  const match = matchRoute(method, event.rawPath);
  if (match.kind === 'wrong-method') {
    throw new HttpError(405, 'Method not allowed', `${method} is not allowed on ${event.rawPath}`, {
      allow: match.allowed.join(', '),
    });
  }
  throw new HttpError(404, 'Not found', `No resource at ${event.rawPath}`);
});

import { readAsset } from '../lib/assets.ts';
import { HttpError, webContent } from '../lib/http.ts';
import { httpFunction } from '../lib/services.ts';

/** GET / (the live dashboard) and GET /assets/{name} (its files and the reference page's stylesheet). */
export const handler = httpFunction(async (event) => {
  const name = event.routeKey === 'GET /' ? 'dashboard.html' : event.pathParameters?.name;
  const asset = readAsset(name);
  if (!asset) throw new HttpError(404, 'Not found', `No asset named ${name}`);
  return webContent(asset.body, asset.contentType);
});

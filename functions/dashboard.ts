import { readAsset } from '../lib/assets.ts';
import { HttpError, webContent } from '../lib/http.ts';
import { httpFunction } from '../lib/services.ts';

const PAGES: Record<string, string> = { 'GET /': 'dashboard.html', 'GET /docs': 'docs.html' };

/**
 * The pages, GET / (the live dashboard) and GET /docs (the API reference), and GET /assets/{name}, their
 * files. They hold no data: their scripts read it from the API with the key the reader enters.
 */
export const handler = httpFunction('dashboard', async (event) => {
  const name = PAGES[event.routeKey] ?? event.pathParameters?.name;
  const asset = readAsset(name);
  if (!asset) throw new HttpError(404, 'Not found', `No asset named ${name}`);
  return webContent(asset.body, asset.contentType);
});

import { readFileSync } from 'node:fs';

/** The files of the dashboard and the API reference page, by name, with their media types. */
export const ASSETS = {
  'dashboard.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'docs.html': 'text/html; charset=utf-8',
  'docs.js': 'text/javascript; charset=utf-8',
  'apiKey.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const;

export type AssetName = keyof typeof ASSETS;

/**
 * Where the files are read from: `web/` next to this module. In a Lambda bundle this module is inlined
 * into `functions/<name>.mjs`, and local/build.ts puts the files in `functions/web/` of the artifact.
 */
export const ASSET_DIR = new URL('./web/', import.meta.url);

const cache = new Map<AssetName, string>();

export const isAssetName = (name: string | undefined): name is AssetName => name !== undefined && Object.hasOwn(ASSETS, name);

/** One file, read once per process; undefined for a name that is not one of ours. */
export const readAsset = (name: string | undefined): { body: string; contentType: string } | undefined => {
  if (!isAssetName(name)) return undefined;
  let body = cache.get(name);
  if (body === undefined) {
    body = readFileSync(new URL(name, ASSET_DIR), 'utf8');
    cache.set(name, body);
  }
  return { body, contentType: ASSETS[name] };
};

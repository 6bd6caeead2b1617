import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { zipSync } from 'fflate';
import { ASSETS } from '../lib/assets.ts';

/** Where the Lambda artifacts go; serverless.yml points each function at `.esbuild/<name>.zip`. */
export const OUT_DIR = '.esbuild';

/**
 * The dashboard's files, for a bundle that reads them (lib/assets.ts reads `web/` next to the module,
 * which in a bundle is `functions/<name>.mjs`): placed at `functions/web/` in the artifact.
 */
const webAssets = async (inputs: string[]): Promise<Record<string, Uint8Array>> => {
  if (!inputs.includes('lib/assets.ts')) return {};
  const names = Object.keys(ASSETS);
  return Object.fromEntries(await Promise.all(names.map(async (name) => [`functions/web/${name}`, await readFile(join('lib', 'web', name))])));
};

/**
 * Bundles each handler of functions/ into one tree-shaken, minified ES module with its source map, and
 * zips it at the path its handler names (`functions/<name>.mjs`): one small artifact per function,
 * no node_modules shipped.
 */
export async function buildFunctions(): Promise<{ name: string; bytes: number }[]> {
  await rm(OUT_DIR, { recursive: true, force: true });
  const names = (await readdir('functions')).filter((file) => file.endsWith('.ts')).map((file) => basename(file, '.ts'));
  const artifacts = [];
  for (const name of names) {
    const dir = join(OUT_DIR, name, 'functions');
    const { outputFiles, metafile } = await build({
      entryPoints: [join('functions', `${name}.ts`)],
      outfile: join(dir, `${name}.mjs`),
      bundle: true,
      minify: true,
      treeShaking: true,
      sourcemap: true,
      sourcesContent: false,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      write: false,
      metafile: true,
      legalComments: 'none',
      // Some dependencies are CommonJS and call require() for Node built-ins.
      banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
    });
    const files = Object.fromEntries(outputFiles.map((file) => [`functions/${basename(file.path)}`, file.contents]));
    Object.assign(files, await webAssets(Object.keys(metafile.inputs)));
    const zip = join(OUT_DIR, `${name}.zip`);
    await mkdir(OUT_DIR, { recursive: true });
    await writeFile(zip, zipSync(files, { level: 9, mtime: new Date('2026-01-01T00:00:00Z') }));
    artifacts.push({ name, bytes: (await stat(zip)).size });
  }
  return artifacts;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const artifacts = await buildFunctions();
  for (const { name, bytes } of artifacts) process.stdout.write(`${`${OUT_DIR}/${name}.zip`.padEnd(32)} ${(bytes / 1024).toFixed(1)} KiB\n`);
}

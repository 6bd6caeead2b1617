import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The parts of a V8 `.cpuprofile` (what `node --cpu-prof` writes) this summary reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  name: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  sampled_ms: number;
  /** Self time by where the code comes from: a package, Node's own modules, our files, GC, idle. */
  by_origin: ProfileShare[];
  /** Self time by function, the hottest first. */
  by_function: ProfileShare[];
}

const root = process.cwd();

/** `zod`, `@aws-sdk/client-dynamodb`, `node internals`, `lib/http.ts`, or V8's own `(garbage collector)`. */
const originOf = (url: string, functionName: string): string => {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const packages = /node_modules\/((?:@[^/]+\/)?[^/]+)/g;
  let name: string | undefined;
  for (let match = packages.exec(url); match; match = packages.exec(url)) name = match[1];
  if (name) return name;
  return url.startsWith('file:') ? relative(root, fileURLToPath(url)) : url;
};

/** A function's file: `zod/v4/core/schemas.js`, `node:internal/...`, or our `lib/http.ts`. */
const whereIn = (url: string, origin: string): string => {
  const at = url.lastIndexOf('node_modules/');
  return at >= 0 ? url.slice(at + 'node_modules/'.length) : url.startsWith('node:') ? url : origin;
};

const top = (totals: Map<string, number>, sampledMs: number, limit: number): ProfileShare[] =>
  [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, micros]) => ({ name, ms: Math.round(micros / 1000), share: Math.round((micros / 1000 / sampledMs) * 1000) / 1000 }));

/** Where a process spent its CPU: self time of each sample, summed by origin and by function. */
export async function summarizeProfile(file: string, limit = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byOrigin = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let sampled = 0;
  for (const [i, id] of profile.samples.entries()) {
    const micros = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id)!;
    const origin = originOf(frame.url, frame.functionName);
    sampled += micros;
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + micros);
    const fn = `${frame.functionName || '(anonymous)'} ${whereIn(frame.url, origin)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + micros);
  }
  const sampledMs = sampled / 1000;
  return { sampled_ms: Math.round(sampledMs), by_origin: top(byOrigin, sampledMs, limit), by_function: top(byFunction, sampledMs, limit) };
}

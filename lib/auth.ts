import { createHash, timingSafeEqual } from 'node:crypto';

export const SCOPES = ['orders:write', 'orders:read', 'metrics:read'] as const;
export type Scope = (typeof SCOPES)[number];

/** A configured API key: only its SHA-256 hash is ever known to the service. */
export interface ApiKey {
  name: string;
  scopes: ReadonlySet<Scope>;
  hash: Buffer;
}

/** Raised for a malformed API_KEYS setting; the message names the entry. */
export class ApiKeysError extends Error {
  override name = 'ApiKeysError';
}

/**
 * Parses `name:scope1+scope2:sha256hex,...` (the API_KEYS setting, or the SSM parameter in the cloud).
 * Whitespace and empty entries are ignored.
 */
export const parseApiKeys = (text: string): ApiKey[] =>
  text
    .split(/[,\n]/)
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry, i) => {
      // Scopes hold colons themselves: the name runs to the first colon, the hash from the last.
      const first = entry.indexOf(':');
      const last = entry.lastIndexOf(':');
      const [name, scopes, hash] = [entry.slice(0, first), entry.slice(first + 1, last), entry.slice(last + 1)];
      if (first < 1 || last <= first + 1 || !hash) {
        throw new ApiKeysError(`API key entry ${i + 1} must be name:scope1+scope2:sha256hex`);
      }
      if (!/^[0-9a-f]{64}$/i.test(hash)) throw new ApiKeysError(`API key "${name}" must give the SHA-256 of the key as 64 hex digits`);
      const unknown = scopes.split('+').filter((scope) => !(SCOPES as readonly string[]).includes(scope));
      if (unknown.length > 0) throw new ApiKeysError(`API key "${name}" has unknown scopes: ${unknown.join(', ')} (known: ${SCOPES.join(', ')})`);
      return { name, scopes: new Set(scopes.split('+') as Scope[]), hash: Buffer.from(hash, 'hex') };
    });

/** The SHA-256 of a key, as configured. */
export const hashKey = (key: string): Buffer => {
  const hash = createHash('sha256');
  // Stryker disable next-line StringLiteral: Node takes the encoding '' for a string as its default, UTF-8
  return hash.update(key, 'utf8').digest();
};

/**
 * The configured key a presented one matches, or undefined. Every configured hash is compared, each in
 * constant time, so the time taken says nothing about which key (or how much of one) matched.
 */
export const findKey = (keys: readonly ApiKey[], presented: string): ApiKey | undefined => {
  const hash = hashKey(presented);
  let found: ApiKey | undefined;
  for (const key of keys) if (timingSafeEqual(hash, key.hash) && !found) found = key;
  return found;
};

/** The key a request carries: `Authorization: Bearer <key>`, or `x-api-key`. */
export const presentedKey = (headers: Record<string, string | undefined>): string | undefined => {
  let authorization: string | undefined;
  let apiKey: string | undefined;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'authorization') authorization = value;
    else if (lower === 'x-api-key') apiKey = value;
  }
  const bearer = authorization && /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
  return bearer || apiKey?.trim() || undefined;
};

/** Why a request may not go on: no usable key (401) or a key without the scope (403). */
export type Denial = { status: 401; reason: string } | { status: 403; reason: string };

/** A route key the function does not serve: no key may use it. */
const UNKNOWN_ROUTE: Denial = { status: 403, reason: 'This function serves no such route' };

/**
 * Checks a request's key against the scope its route needs: null for a public route, undefined for a route
 * the function does not serve (refused whatever the key). With no keys configured auth is off (the local
 * runtimes allow that on loopback only), unless `required` (the cloud, which fails closed).
 */
export const authorize = (
  keys: readonly ApiKey[],
  required: boolean,
  scope: Scope | null | undefined,
  headers: Record<string, string | undefined>,
): Denial | undefined => {
  if (scope === null) return undefined;
  if (keys.length === 0 && !required) return scope === undefined ? UNKNOWN_ROUTE : undefined;
  const presented = presentedKey(headers);
  if (!presented) return { status: 401, reason: 'Send an API key as Authorization: Bearer <key> (or x-api-key)' };
  const key = findKey(keys, presented);
  if (!key) return { status: 401, reason: 'The API key is not valid' };
  if (scope === undefined) return UNKNOWN_ROUTE;
  if (!key.scopes.has(scope)) return { status: 403, reason: `The API key "${key.name}" lacks the ${scope} scope` };
  return undefined;
};

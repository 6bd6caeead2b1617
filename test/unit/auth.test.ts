import { timingSafeEqual } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { ApiKeysError, authorize, findKey, hashKey, parseApiKeys, presentedKey } from '../../lib/auth.ts';

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});

const hex = (key: string) => hashKey(key).toString('hex');

describe('parseApiKeys', () => {
  it('reads name, scopes and hash of every entry', () => {
    const keys = parseApiKeys(` shop1:orders:write+orders:read:${hex('k1')} , ops:metrics:read:${hex('k2')},`);

    expect(keys.map((k) => ({ name: k.name, scopes: [...k.scopes], hash: k.hash.toString('hex') }))).toEqual([
      { name: 'shop1', scopes: ['orders:write', 'orders:read'], hash: hex('k1') },
      { name: 'ops', scopes: ['metrics:read'], hash: hex('k2') },
    ]);
  });

  it('reads a name of one character', () => {
    expect(parseApiKeys(`a:orders:read:${hex('k')}`).map((k) => k.name)).toEqual(['a']);
  });

  it('reads nothing from an empty setting', () => {
    expect(parseApiKeys('')).toEqual([]);
  });

  it.each([
    ['an entry without scopes and hash', 'shop1', /entry 1 must be name:scope1\+scope2:sha256hex/],
    ['a missing hash', 'shop1:orders:read', /SHA-256 of the key as 64 hex digits/],
    ['an unknown scope', `shop1:orders:delete:${hex('k')}`, /unknown scopes: orders:delete/],
    ['a hash that is not 64 hex digits', 'shop1:orders:read:abc', /SHA-256 of the key as 64 hex digits/],
    ['a hash with a character before its 64 hex digits', `shop1:orders:read:g${hex('k')}`, /SHA-256 of the key as 64 hex digits/],
    ['a hash with a character after its 64 hex digits', `shop1:orders:read:${hex('k')}g`, /SHA-256 of the key as 64 hex digits/],
    ['an entry without a name', `:orders:read:${hex('k')}`, /^API key entry 1 must be name:scope1\+scope2:sha256hex$/],
    ['an entry without scopes', `shop1::${hex('k')}`, /^API key entry 1 must be name:scope1\+scope2:sha256hex$/],
    ['an entry of name and hash only', `shop1:${hex('k')}`, /^API key entry 1 must be name:scope1\+scope2:sha256hex$/],
  ])('refuses %s', (_, text, message) => {
    expect(() => parseApiKeys(text)).toThrow(ApiKeysError);
    expect(() => parseApiKeys(text)).toThrow(message);
  });

  it('names the entry, the unknown scopes and the known ones', () => {
    expect(() => parseApiKeys(`ops:metrics:read:${hex('k1')},shop1:orders:delete+orders:purge:${hex('k2')}`)).toThrow(
      'API key "shop1" has unknown scopes: orders:delete, orders:purge (known: orders:write, orders:read, metrics:read)',
    );
  });

  it('raises an error named ApiKeysError, as the start-up error handling reads it', () => {
    expect(() => parseApiKeys('shop1')).toThrow(expect.objectContaining({ name: 'ApiKeysError' }));
  });
});

describe('findKey', () => {
  const keys = parseApiKeys(`shop1:orders:write:${hex('secret-one')},ops:metrics:read:${hex('secret-two')}`);

  it('finds the key a presented secret hashes to', () => {
    expect(findKey(keys, 'secret-two')?.name).toBe('ops');
    expect(findKey(keys, 'secret-one')?.name).toBe('shop1');
  });

  it('compares against every configured key in constant time, even after a match', () => {
    vi.mocked(timingSafeEqual).mockClear();
    findKey(keys, 'secret-one');
    expect(timingSafeEqual).toHaveBeenCalledTimes(keys.length);
  });

  it('finds nothing for a wrong or partial secret', () => {
    expect(findKey(keys, 'secret-on')).toBeUndefined();
    expect(findKey(keys, '')).toBeUndefined();
  });
});

describe('presentedKey', () => {
  it('takes a Bearer token, whatever the header case', () => {
    expect(presentedKey({ Authorization: 'Bearer abc.def' })).toBe('abc.def');
    expect(presentedKey({ authorization: 'bearer xyz' })).toBe('xyz');
  });

  it('takes x-api-key when there is no Bearer token', () => {
    expect(presentedKey({ 'x-api-key': ' k ' })).toBe('k');
    expect(presentedKey({ authorization: 'Basic dXNlcjpwYXNz', 'X-Api-Key': 'k2' })).toBe('k2');
  });

  it('takes a Bearer token after any run of spaces, and ignores spaces after it', () => {
    expect(presentedKey({ authorization: 'Bearer   abc' })).toBe('abc');
    expect(presentedKey({ authorization: 'Bearer abc  ' })).toBe('abc');
  });

  it('takes no Bearer token from a header that is not one Bearer token', () => {
    expect(presentedKey({ authorization: 'NotBearer abc' })).toBeUndefined();
    expect(presentedKey({ authorization: 'Bearer abc def', 'x-api-key': 'k' })).toBe('k');
  });

  it('finds none without either header', () => {
    expect(presentedKey({ accept: '*/*' })).toBeUndefined();
    expect(presentedKey({ authorization: 'Bearer ' })).toBeUndefined();
  });
});

describe('authorize', () => {
  const keys = parseApiKeys(`writer:orders:write:${hex('w')},reader:orders:read:${hex('r')}`);

  it('lets a key with the scope through', () => {
    expect(authorize(keys, false, 'orders:write', { authorization: 'Bearer w' })).toBeUndefined();
  });

  it('answers 401 without a key (saying how to send one) or with an unknown one, and 403 for a key without the scope', () => {
    expect(authorize(keys, false, 'orders:write', {})).toEqual({ status: 401, reason: 'Send an API key as Authorization: Bearer <key> (or x-api-key)' });
    expect(authorize(keys, false, 'orders:write', { authorization: 'Bearer nope' })).toEqual({ status: 401, reason: 'The API key is not valid' });
    expect(authorize(keys, false, 'orders:write', { 'x-api-key': 'r' })).toEqual({
      status: 403,
      reason: 'The API key "reader" lacks the orders:write scope',
    });
  });

  it('leaves public routes open', () => {
    expect(authorize(keys, true, null, {})).toBeUndefined();
  });

  it('is off without keys, unless required, where it fails closed', () => {
    expect(authorize([], false, 'metrics:read', {})).toBeUndefined();
    expect(authorize([], true, 'metrics:read', { authorization: 'Bearer anything' })?.status).toBe(401);
  });

  it('refuses a route the function does not serve whatever the key, even with auth off', () => {
    const refused = { status: 403, reason: 'This function serves no such route' };
    expect(authorize([], false, undefined, {})).toEqual(refused);
    expect(authorize(keys, false, undefined, {})?.status).toBe(401);
    expect(authorize(keys, false, undefined, { authorization: 'Bearer w' })).toEqual(refused);
    expect(authorize(keys, true, undefined, { authorization: 'Bearer r' })).toEqual(refused);
  });
});

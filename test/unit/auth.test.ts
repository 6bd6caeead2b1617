import { describe, expect, it } from 'vitest';
import { ApiKeysError, findKey, hashKey, parseApiKeys, presentedKey } from '../../lib/auth.ts';

const hex = (key: string) => hashKey(key).toString('hex');

describe('parseApiKeys', () => {
  it('reads name, scopes and hash of every entry', () => {
    const keys = parseApiKeys(` shop1:orders:write+orders:read:${hex('k1')} , ops:metrics:read:${hex('k2')},`);

    expect(keys.map((k) => ({ name: k.name, scopes: [...k.scopes], hash: k.hash.toString('hex') }))).toEqual([
      { name: 'shop1', scopes: ['orders:write', 'orders:read'], hash: hex('k1') },
      { name: 'ops', scopes: ['metrics:read'], hash: hex('k2') },
    ]);
  });

  it('reads nothing from an empty setting', () => {
    expect(parseApiKeys('')).toEqual([]);
  });

  it.each([
    ['an entry without scopes and hash', 'shop1', /entry 1 must be name:scope1\+scope2:sha256hex/],
    ['a missing hash', 'shop1:orders:read', /SHA-256 of the key as 64 hex digits/],
    ['an unknown scope', `shop1:orders:delete:${hex('k')}`, /unknown scopes: orders:delete/],
    ['a hash that is not 64 hex digits', 'shop1:orders:read:abc', /SHA-256 of the key as 64 hex digits/],
  ])('refuses %s', (_, text, message) => {
    expect(() => parseApiKeys(text)).toThrow(ApiKeysError);
    expect(() => parseApiKeys(text)).toThrow(message);
  });
});

describe('findKey', () => {
  const keys = parseApiKeys(`shop1:orders:write:${hex('secret-one')},ops:metrics:read:${hex('secret-two')}`);

  it('finds the key a presented secret hashes to', () => {
    expect(findKey(keys, 'secret-two')?.name).toBe('ops');
    expect(findKey(keys, 'secret-one')?.name).toBe('shop1');
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

  it('finds none without either header', () => {
    expect(presentedKey({ accept: '*/*' })).toBeUndefined();
    expect(presentedKey({ authorization: 'Bearer ' })).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { isLoopbackAddress, isLoopbackHost, refuseForeignHost } from '../../lib/hostCheck.ts';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1', '0:0:0:0:0:ffff:7f00:1'])('takes %s', (address) => {
    expect(isLoopbackAddress(address)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', '::2', 'localhost', '', '/tmp/x.sock'])('refuses %s', (address) => {
    expect(isLoopbackAddress(address)).toBe(false);
  });
});

describe('isLoopbackHost', () => {
  it.each(['localhost', 'localhost:3000', 'LOCALHOST:3000', '127.0.0.1', '127.0.0.1:3000', '127.9.9.9:80', '[::1]', '[::1]:3000'])(
    'takes the Host header %s',
    (host) => {
      expect(isLoopbackHost(host)).toBe(true);
    },
  );

  it.each([
    ['a foreign name', 'evil.example:3000'],
    ['a name under localhost of another site', 'localhost.evil.example'],
    ['a name that merely starts with 127', '127.0.0.1.evil.example'],
    ['every address', '0.0.0.0:3000'],
    ['another address', '192.168.1.10:3000'],
    ['a name with a trailing dot', 'localhost.:3000'],
    ['nothing', ''],
    ['no header', undefined],
    ['something that is no host', 'local host'],
  ])('refuses %s', (_label, host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('refuseForeignHost', () => {
  it('answers a foreign Host with 421, whatever the case of the header name', () => {
    expect(() => refuseForeignHost({ Host: 'evil.example' })).toThrow(expect.objectContaining({ status: 421, title: 'Misdirected request' }));
    expect(() => refuseForeignHost({})).toThrow(expect.objectContaining({ status: 421 }));
    expect(() => refuseForeignHost({ host: '127.0.0.1:3000' })).not.toThrow();
  });

  it('reads the Host header among others, not whichever header comes first', () => {
    expect(() => refuseForeignHost({ 'user-agent': 'curl/8', accept: '*/*', Host: 'localhost:3000' })).not.toThrow();
    expect(() => refuseForeignHost({ 'x-forwarded-host': 'localhost', host: 'evil.example' })).toThrow(expect.objectContaining({ status: 421 }));
  });

  it('tells the client why, and how to serve other names', () => {
    expect(() => refuseForeignHost({ host: 'evil.example' })).toThrow(expect.objectContaining({ message: expect.stringMatching(/localhost.*API_KEYS/) }));
  });
});

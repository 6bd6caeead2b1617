import { BlockList, isIP } from 'node:net';
import { HttpError } from './http.ts';

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');

/**
 * True for an IP address only this machine can reach: 127.0.0.0/8 and ::1, IPv4-mapped ones too
 * (`::ffff:127.0.0.1`, as a dual-stack socket reports them). False for anything else, `0.0.0.0` and `::` included.
 */
export const isLoopbackAddress = (address: string): boolean => {
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 6 ? 'ipv6' : 'ipv4');
};

/**
 * True when a Host header names this machine: `localhost` or a loopback address (`127.0.0.1`, `[::1]`), with
 * or without a port. A page whose own name was rebound to 127.0.0.1 (DNS rebinding) still sends its name.
 */
export const isLoopbackHost = (host: string | undefined): boolean => {
  if (!host) return false;
  let hostname: string;
  try {
    hostname = new URL(`http://${host}`).hostname;
  } catch {
    return false;
  }
  return hostname === 'localhost' || isLoopbackAddress(hostname.replace(/^\[(.*)\]$/, '$1'));
};

/**
 * The DNS rebinding defence of a service with auth off, which serves only this machine: a request whose Host
 * header names another (a page on another site whose name now resolves to 127.0.0.1) gets 421. With API
 * keys configured any Host is served, as a key is what protects the API then.
 */
export const refuseForeignHost = (headers: Record<string, string | undefined>): void => {
  const host = Object.entries(headers).find(([name]) => name.toLowerCase() === 'host')?.[1];
  if (isLoopbackHost(host)) return;
  throw new HttpError(
    421,
    'Misdirected request',
    'With auth off this service answers only requests addressed to localhost, 127.0.0.1 or [::1]; set API_KEYS to serve other names',
  );
};

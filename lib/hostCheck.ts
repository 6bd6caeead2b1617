import { BlockList, isIP } from 'node:net';

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

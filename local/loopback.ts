import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { Config } from '../lib/config.ts';
import { isLoopbackAddress } from '../lib/hostCheck.ts';
import { StartupError } from './backend.ts';

/** What a listening server reports: its address and port, a Unix socket's path (this machine only), or null. */
type Bound = AddressInfo | string | null;

/**
 * Secure by default: without API keys the service only serves this machine. The error to stop with when a
 * server is bound beyond loopback while no keys are configured (the address actually bound, whatever host
 * name or option led there), else undefined.
 */
export const openWithoutKeys = (config: Config, bound: Bound): StartupError | undefined => {
  if (config.API_KEYS.length > 0 || bound === null || typeof bound === 'string' || isLoopbackAddress(bound.address)) return undefined;
  const where = bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return new StartupError(
    `Listening on ${where} would serve the API beyond this machine, but no API keys are configured. ` +
      'Create one with `npm run key:new -- --name <name> --scopes orders:write,orders:read,metrics:read` and set API_KEYS, ' +
      'or listen on 127.0.0.1 (HOST, or --host with start:offline).',
  );
};

const LISTENING = 'tracing:net.server.listen:asyncEnd';

/**
 * For a runtime whose servers another library starts (serverless-offline): from now on, every server this
 * process starts listening is checked as it binds, before it can accept a connection; one open without keys
 * drops every connection from then on (closing it would stall the library's start). `check` then throws the
 * error saying where it listened; it throws too if no server was seen at all while auth is off, as the check
 * could not be made; else it returns the TCP addresses bound (the real port, when port 0 was asked for). `stop`
 * ends the watch.
 */
export const guardListening = (config: Config): { check: () => AddressInfo[]; stop: () => void } => {
  let seen = 0;
  const bound: AddressInfo[] = [];
  let refused: StartupError | undefined;
  const onListening = (message: unknown) => {
    const { server } = message as { server: Server };
    seen += 1;
    const address = server.address();
    if (address !== null && typeof address === 'object') bound.push(address);
    const error = openWithoutKeys(config, address);
    if (!error) return;
    refused ??= error;
    server.prependListener('connection', (socket: Socket) => socket.destroy());
  };
  subscribe(LISTENING, onListening);
  return {
    check() {
      if (refused) throw refused;
      if (seen === 0 && config.API_KEYS.length === 0) throw new StartupError('Could not see where the API listens, so cannot tell it serves only this machine.');
      return bound;
    },
    stop: () => unsubscribe(LISTENING, onListening),
  };
};

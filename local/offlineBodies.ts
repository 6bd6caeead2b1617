import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { IncomingMessage } from 'node:http';

const REQUEST_START = 'http.server.request.start';

/**
 * serverless-offline decodes a textual body as UTF-8 before the handler sees it, so bytes that are not UTF-8
 * become U+FFFD and such a body passes for valid text. From now on every request's body is checked as it is
 * read (without changing how it flows); one that is not UTF-8 is marked binary for serverless-offline, which
 * reads the Content-Type it decodes by from the parsed headers: it then hands the handler the bytes in base64,
 * as the standalone adapter does, and the handler refuses them with 400. The event keeps the client's
 * Content-Type header, which serverless-offline takes from the raw headers. Returns a function that stops it.
 */
export const passInvalidUtf8AsBytes = (): (() => void) => {
  const onRequest = (message: unknown) => {
    const { request } = message as { request: IncomingMessage };
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let valid = true;
    const check = (chunk?: Buffer) => {
      try {
        decoder.decode(chunk, { stream: chunk !== undefined });
      } catch {
        valid = false;
      }
    };
    const emit = request.emit.bind(request);
    // Whoever reads the body (a 'data' listener, pipe or read()) gets its chunks through emit.
    request.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event === 'data' && valid && Buffer.isBuffer(args[0])) check(args[0]);
      if (event === 'end') {
        if (valid) check();
        if (!valid) request.headers['content-type'] = 'application/octet-stream';
      }
      return emit(event, ...args);
    };
  };
  subscribe(REQUEST_START, onRequest);
  return () => unsubscribe(REQUEST_START, onRequest);
};

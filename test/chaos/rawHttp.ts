import { connect } from 'node:net';

/** An HTTP/1.1 answer as it came over the wire. */
export interface RawResponse {
  status: number;
  /** Header names in lower case; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  /** The request target exactly as sent: nothing is encoded or normalised. */
  target: string;
  headers?: [string, string][];
  body?: Buffer | string;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  chunked?: boolean;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Parses the response in `data` once it is complete; undefined while more is needed. */
const parse = (data: Buffer, method: string, ended: boolean): RawResponse | undefined => {
  let offset = 0;
  for (;;) {
    const end = data.indexOf(HEADER_END, offset);
    if (end < 0) return undefined;
    const lines = data.subarray(offset, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
    if (!status) throw new Error(`not an HTTP status line: ${JSON.stringify(lines[0])}`);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const bodyStart = end + HEADER_END.length;
    // An interim answer (100 Continue): the real one follows.
    if (status >= 100 && status < 200) {
      offset = bodyStart;
      continue;
    }
    const rest = data.subarray(bodyStart);
    if (method === 'HEAD' || status === 204 || status === 304) return { status, headers, body: Buffer.alloc(0) };
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      return rest.length >= length ? { status, headers, body: rest.subarray(0, length) } : undefined;
    }
    if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const chunks: Buffer[] = [];
      let at = 0;
      for (;;) {
        const lineEnd = rest.indexOf('\r\n', at);
        if (lineEnd < 0) return undefined;
        const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
        if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
        if (rest.length < lineEnd + 2 + size + 2) return undefined;
        chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    }
    return ended ? { status, headers, body: rest } : undefined;
  }
};

/**
 * Sends one request over a fresh TCP connection, byte for byte as given (no encoding, no normalisation,
 * any method), and resolves with the answer, or rejects when none comes within `timeoutMs` or the
 * connection closes without one.
 */
export const rawRequest = (port: number, request: RawRequest, timeoutMs = 10_000): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const body = request.body === undefined ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(request.body, 'utf8');
    const headers: [string, string][] = [['host', `127.0.0.1:${port}`], ...(request.headers ?? [])];
    if (body !== undefined) headers.push(request.chunked ? ['transfer-encoding', 'chunked'] : ['content-length', String(body.length)]);
    const head = Buffer.from(
      `${request.method} ${request.target} HTTP/1.1\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`,
      'utf8',
    );
    const payload =
      body === undefined
        ? head
        : request.chunked
          ? Buffer.concat([head, ...(body.length ? [Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n')] : []), Buffer.from('0\r\n\r\n')])
          : Buffer.concat([head, body]);

    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const settle = (outcome: { response?: RawResponse; error?: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (outcome.response) resolve(outcome.response);
      else reject(outcome.error);
    };
    const timer = setTimeout(
      () => settle({ error: new Error(`no answer within ${timeoutMs} ms to ${request.method} ${request.target.slice(0, 200)}`) }),
      timeoutMs,
    );
    const tryParse = (ended: boolean) => {
      try {
        const response = parse(data, request.method, ended);
        if (response) settle({ response });
        else if (ended) settle({ error: new Error(`the connection closed without a complete answer: ${JSON.stringify(data.toString('latin1').slice(0, 300))}`) });
      } catch (error) {
        settle({ error: error as Error });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    // A reset after the answer arrived (the server stopped reading a refused body) still counts as the answer.
    socket.on('error', (error) => (data.length > 0 ? tryParse(true) : settle({ error })));
    socket.on('close', () => tryParse(true));
    socket.write(payload);
  });

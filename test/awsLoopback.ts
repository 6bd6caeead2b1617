import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

/** One request an AWS SDK client sent: its operation (`x-amz-target`) and its JSON body. */
export interface AwsRequest {
  target: string;
  body: Record<string, unknown>;
}

/** What the stand-in answers: an HTTP status (200 unless told) and a JSON body, as the service sends it. */
export interface AwsAnswer {
  status?: number;
  body: unknown;
}

export interface AwsLoopback {
  /** Give it to the client as `endpoint` (or AWS_ENDPOINT_URL_<SERVICE>). */
  endpoint: string;
  /** Every request received, in order. */
  requests: AwsRequest[];
  close(): Promise<void>;
}

/** An error as the AWS JSON protocols send one: the SDK reads its name from `__type`. */
export const awsError = (status: number, type: string): AwsAnswer => ({ status, body: { __type: type, message: `${type} from the stand-in` } });

/**
 * A loopback HTTP server posing as an AWS service of the JSON protocols (SSM, SQS), on a port the OS picks:
 * AWS itself cannot run here, so the SDK's real serialisation, error parsing and retries run against it.
 */
export const startAwsLoopback = async (answer: (request: AwsRequest) => AwsAnswer): Promise<AwsLoopback> => {
  const requests: AwsRequest[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const request = { target: String(req.headers['x-amz-target']), body: JSON.parse(text || '{}') as Record<string, unknown> };
      requests.push(request);
      const { status = 200, body } = answer(request);
      res.writeHead(status, { 'content-type': req.headers['content-type'] ?? 'application/x-amz-json-1.0' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
};

/** A loopback endpoint that accepts connections and never answers: how a hung AWS service looks to a client. */
export const startSilentEndpoint = async (): Promise<{ endpoint: string; connections: () => number; close(): Promise<void> }> => {
  const sockets: Socket[] = [];
  const server = createTcpServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => sockets.length,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
};

/** Credentials for a client of the stand-in: the SDK signs every request, and the stand-in ignores the signature. */
export const LOOPBACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/**
 * SendMessageBatch's answer, as SQS gives it: each entry accepted unless `refused` (then in `Failed`); the SDK
 * checks the MD5 of each accepted body.
 */
export const sqsAccepts = (request: AwsRequest, refused: (orderId: string) => boolean = () => false): AwsAnswer => {
  const entries = request.body.Entries as { Id: string; MessageBody: string }[];
  const isRefused = (entry: { MessageBody: string }) => refused((JSON.parse(entry.MessageBody) as { order_id: string }).order_id);
  return {
    body: {
      Successful: entries
        .filter((entry) => !isRefused(entry))
        .map((entry) => ({ Id: entry.Id, MessageId: `m-${entry.Id}`, MD5OfMessageBody: createHash('md5').update(entry.MessageBody).digest('hex') })),
      Failed: entries.filter(isRefused).map((entry) => ({ Id: entry.Id, SenderFault: false, Code: 'InternalError' })),
    },
  };
};

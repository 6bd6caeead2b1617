import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { parseOrderMessage, SqsQueue } from '../../lib/queue/sqsQueue.ts';

// SQS cannot run here: a stand-in client records the commands the adapter sends, and answers as SQS does.
const fakeClient = (failIds: string[] = []) => {
  const sent: SendMessageBatchCommand['input'][] = [];
  const client = {
    send: async (command: SendMessageBatchCommand) => {
      sent.push(command.input);
      const entries = command.input.Entries ?? [];
      return {
        Successful: entries.filter((e) => !failIds.includes(JSON.parse(e.MessageBody!).order_id)).map((e) => ({ Id: e.Id })),
        Failed: entries.filter((e) => failIds.includes(JSON.parse(e.MessageBody!).order_id)).map((e) => ({ Id: e.Id, Code: 'x', SenderFault: false })),
      };
    },
  } as unknown as SQSClient;
  return { client, sent };
};

describe('SqsQueue', () => {
  it('sends one message per id, in batches of ten, and counts what SQS accepted', async () => {
    const { client, sent } = fakeClient(['id-3']);
    const ids = Array.from({ length: 23 }, (_, i) => `id-${i}`);

    const accepted = await new SqsQueue(client, 'https://sqs.example/queue').send(ids);

    expect(accepted).toBe(22);
    expect(sent.map((batch) => batch.Entries?.length)).toEqual([10, 10, 3]);
    expect(sent[0]).toMatchObject({ QueueUrl: 'https://sqs.example/queue' });
    expect(sent[0]?.Entries?.[0]).toEqual({ Id: '0', MessageBody: '{"order_id":"id-0"}', DelaySeconds: 0 });
  });

  it('delays a retry until its back-off ends, at most the 15 minutes SQS allows', async () => {
    const { client, sent } = fakeClient();
    const queue = new SqsQueue(client, 'q');

    await queue.send(['a'], { notBefore: Date.now() + 4_200 });
    await queue.send(['b'], { notBefore: Date.now() + 3_600_000 });
    await queue.send(['c'], { notBefore: Date.now() - 1_000 });

    expect(sent.map((batch) => batch.Entries?.[0]?.DelaySeconds)).toEqual([5, 900, 0]);
  });
});

describe('parseOrderMessage', () => {
  it('reads the order id of a message', () => {
    expect(parseOrderMessage('{"order_id":"ORD001"}')).toBe('ORD001');
  });

  it.each(['not json', '{}', '{"order_id":""}', '{"order_id":7}', 'null'])('refuses %s', (body) => {
    expect(() => parseOrderMessage(body)).toThrow();
  });
});

import { BatchGetCommand, type BatchGetCommandOutput, type DynamoDBDocumentClient, type TransactWriteCommandInput } from '@aws-sdk/lib-dynamodb';
import type { OrderStatus } from './order.ts';

/** Number of counter items the metrics are spread over (DynamoDB allows ~1 000 writes/s per item). */
export const METRICS_SHARDS = 16;

/** A counter per status, sums for the averages, and one counter per histogram bucket (`h_<bound>`). */
export type CounterName = OrderStatus | 'sum_processing_ms' | 'sum_turnaround_ms' | `h_${number}`;
export type CounterMove = Partial<Record<CounterName, number>>;
type TransactWriteItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

const counterKey = (shard: number) => ({ pk: `METRICS#${shard}`, sk: 'METRICS' });

/**
 * The counter half of a transition's transaction: `ADD` of each counter on one shard item.
 *
 * Written without dynamodb-toolbox on purpose: the histogram gives the item an open set of top-level
 * attributes (ADD only works on top-level ones), and a toolbox schema listing every bucket cost
 * 4 ms of CPU to parse per write.
 */
export const counterUpdate = (tableName: string, shard: number, move: CounterMove): TransactWriteItem => {
  const entries = Object.entries(move).filter(([, by]) => by !== 0);
  return {
    Update: {
      TableName: tableName,
      Key: counterKey(shard),
      UpdateExpression: `ADD ${entries.map((_, i) => `#c${i} :c${i}`).join(', ')}`,
      ExpressionAttributeNames: Object.fromEntries(entries.map(([name], i) => [`#c${i}`, name])),
      ExpressionAttributeValues: Object.fromEntries(entries.map(([, by], i) => [`:c${i}`, by])),
    },
  };
};

/** The moves of several transitions committed together, as one. */
export const mergeMoves = (moves: CounterMove[]): CounterMove => {
  const merged: CounterMove = {};
  for (const move of moves) for (const [name, by] of Object.entries(move) as [CounterName, number][]) merged[name] = (merged[name] ?? 0) + by;
  return merged;
};

/** Every counter summed over the shards: one strongly consistent BatchGetItem, whatever the order count. */
export async function readCounters(documentClient: DynamoDBDocumentClient, tableName: string): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  let keys: Record<string, unknown>[] | undefined = Array.from({ length: METRICS_SHARDS }, (_, shard) => counterKey(shard));
  while (keys && keys.length > 0) {
    const answer: BatchGetCommandOutput = await documentClient.send(
      new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: true } } }),
    );
    for (const item of answer.Responses?.[tableName] ?? []) {
      for (const [name, value] of Object.entries(item)) {
        if (typeof value === 'number') totals.set(name, (totals.get(name) ?? 0) + value);
      }
    }
    keys = answer.UnprocessedKeys?.[tableName]?.Keys;
  }
  return totals;
}

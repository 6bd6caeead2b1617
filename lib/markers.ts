import { randomBytes } from 'node:crypto';
import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';

/**
 * Due markers: how the sweeper finds every order that still needs work without an index entry per order.
 *
 * Each group commit of new orders writes one marker item in the same transaction, listing their ids
 * (`pk=DUE#<shard>`, `sk=<creation time>#<random>`). A marker lives until all of its orders are COMPLETED or
 * FAILED: the sweeper reads markers oldest first, re-queues the orders that are due, shrinks a marker to the
 * orders not finished yet and deletes it once none is left. A marker listing one order alone (every create in
 * Lambda, a lone create locally) is deleted by that order's final transition, and a shared one by the transition
 * commit of its creating process that finishes the last of its orders (see `OrderRepository`), so the sweeper
 * mostly finds nothing to tidy. Compared with a sparse index of due orders, a batch of 98 orders costs one item
 * write instead of 98 index entries, and a claim or a retry touches no index at all.
 */

const S = (value: string): AttributeValue.SMember => ({ S: value });

/** A marker as read back: where it is, and the orders it still lists. */
export interface Marker {
  ref: string;
  ids: string[];
}

/** Sort keys start with the creation time, zero-padded so that string order is time order. */
const timeKey = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

/** A new marker's reference: `<shard>:<sort key>`, on a random one of `shards`. */
export const newMarkerRef = (createdAtMs: number, shards: number, random: () => number = Math.random): string =>
  `${Math.floor(random() * shards)}:${timeKey(createdAtMs)}#${randomBytes(6).toString('base64url')}`;

/** The table key of a marker, from its reference. */
export const markerKey = (ref: string) => {
  const at = ref.indexOf(':');
  return { pk: S(`DUE#${ref.slice(0, at)}`), sk: S(ref.slice(at + 1)) };
};

/** The put of a new marker, in the transaction that creates its orders. */
export const putMarker = (tableName: string, ref: string, orderIds: readonly string[]): TransactWriteItem => ({
  Put: { TableName: tableName, Item: { ...markerKey(ref), ids: { L: orderIds.map(S) } } },
});

/** The partition of shard `shard`, and the first sort key after time `ms` (for "created at or before"). */
export const markerRange = (shard: number, ms: number) => ({ pk: `DUE#${shard}`, before: timeKey(ms + 1) });

/** Reads a marker item back. */
export const toMarker = (item: Record<string, AttributeValue>): Marker => ({
  ref: `${item.pk!.S!.slice('DUE#'.length)}:${item.sk!.S!}`,
  ids: (item.ids?.L ?? []).map((id) => id.S!),
});

import type { Logger } from '@aws-lambda-powertools/logger';
import { monotonicFactory } from 'ulid';
import { OrderConflict, OrderNotFound } from './errors.ts';
import { GroupCommit } from './groupCommit.ts';
import { ORDER_ID_PATTERN, parseOrderInput, sameContent, toOrderView, type Order } from './order.ts';
import { encodeCursor, parseListOrdersQuery } from './orderListQuery.ts';
import type { CreateResult, OrderRepository, OrderToCreate, StoredOrder } from './orders.ts';
import type { StoreGate } from './storeGate.ts';
import type { OrderQueue } from './queue/port.ts';

/** One page of GET /orders. */
export interface OrderPage {
  items: Order[];
  /** Opaque; pass it as `cursor` for the next page. Null on the last page. */
  next_cursor: string | null;
}

export interface OrderServiceOptions {
  /** Most orders one group commit writes (a transaction takes 100 items, one is the counter). */
  maxBatch: number;
  /** Most group commits under way at once. */
  maxInFlight: number;
  /** Most creates waiting for a commit; more are refused with a 503 (Overloaded). */
  maxWaiting: number;
  /** Told when an order could not be queued, so a sweeper knows to look for it. */
  onBacklog?: () => void;
  /** Shared with the process's other writers; creates are urgent (a client waits for each). */
  gate?: StoreGate;
}

/** The order use-cases behind the HTTP handlers. */
export class OrderService {
  private readonly commits: GroupCommit<OrderToCreate, CreateResult>;
  private readonly newId = monotonicFactory();

  constructor(
    private readonly orders: OrderRepository,
    private readonly queue: OrderQueue,
    private readonly logger: Logger,
    private readonly options: OrderServiceOptions,
  ) {
    this.commits = new GroupCommit({
      maxBatch: options.maxBatch,
      maxInFlight: options.maxInFlight,
      maxWaiting: options.maxWaiting,
      key: (order) => order.order_id,
      // A create waiting behind one with its id is answered from that one's stored order: replay or conflict.
      settleFollower: (order, committed) =>
        sameContent(committed.order, order) ? { ok: true, value: { created: false, order: committed.order } } : { ok: false, error: new OrderConflict(order.order_id) },
      commit: (batch) => this.orders.createMany(batch),
      ...(options.gate && { gate: { store: options.gate, urgency: 'urgent' as const } }),
    });
  }

  /** Creates received but not yet in a transaction. */
  get waitingCreates(): number {
    return this.commits.waiting;
  }

  /**
   * Creates an order from a request body. Resolves once the order is durable: `created` is false for an
   * identical replay. Throws InvalidOrder, OrderConflict, StoreUnavailable or Overloaded.
   */
  async create(body: unknown): Promise<{ created: boolean; order: Order }> {
    const order = parseOrderInput(body, () => this.newId());
    const result = await this.commits.submit({ ...order, created_at: new Date().toISOString() });
    if (result.created) await this.enqueue(result.order);
    return { created: result.created, order: toOrderView(result.order) };
  }

  /** The order with this id; throws OrderNotFound. */
  async get(orderId: string | undefined): Promise<Order> {
    // An id that breaks the pattern cannot exist: answer without asking the store.
    if (!orderId || !ORDER_ID_PATTERN.test(orderId)) throw new OrderNotFound(orderId ?? '');
    const order = await this.orders.get(orderId);
    if (!order) throw new OrderNotFound(orderId);
    return toOrderView(order);
  }

  /**
   * A page of a user's orders, newest first, from the query string of GET /orders. Throws InvalidQuery
   * for a bad query, including a cursor that does not decode or was issued for another user.
   */
  async list(query: Record<string, string | undefined>): Promise<OrderPage> {
    const { user_id, limit, after } = parseListOrdersQuery(query);
    const { orders, more } = await this.orders.listByUser(user_id, limit, after);
    const last = orders.at(-1);
    return {
      items: orders.map(toOrderView),
      next_cursor: more && last ? encodeCursor({ user_id, created_at: last.created_at, order_id: last.order_id }) : null,
    };
  }

  /**
   * Queues a durable order with the state it was stored in (so a local worker need not read it back); if
   * that fails it stays PENDING in the store, where the sweeper finds it.
   */
  private async enqueue(order: StoredOrder): Promise<void> {
    const { order_id, status, attempts, created_at, marker } = order;
    try {
      if ((await this.queue.send([{ order_id, status, attempts, created_at, ...(marker && { marker }) }])) > 0) return;
    } catch (error) {
      this.logger.warn('could not queue the order; the sweeper will', { order_id, error: error as Error });
    }
    this.options.onBacklog?.();
  }
}

import { parseArgs } from 'node:util';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { loadConfig } from '../lib/config.ts';
import { OrderRepository } from '../lib/orders.ts';
import { checkState } from '../lib/orderWrites.ts';
import { createDocumentClient, createStore } from '../lib/store.ts';

/**
 * `npm run requeue -- <order_id>...` takes orders out of quarantine once what broke them is fixed: each is put
 * on a due marker again, and the running service's sweeper sends it. `--list` lists the quarantined orders
 * (id, when, why); `--all` requeues every one. It works on TABLE_NAME at DYNAMODB_ENDPOINT (the DynamoDB Local
 * the start banner names), or in AWS without it (AWS_REGION and the usual credentials).
 */
const { values, positionals } = parseArgs({ options: { all: { type: 'boolean' }, list: { type: 'boolean' } }, allowPositionals: true });
if (positionals.length === 0 && !values.all && !values.list) {
  process.stderr.write('Usage: npm run requeue -- <order_id>... | --all | --list  (TABLE_NAME, DYNAMODB_ENDPOINT or AWS credentials)\n');
  process.exit(2);
}

const config = loadConfig();
const documentClient = createDocumentClient({ tableName: config.TABLE_NAME, region: config.AWS_REGION, endpoint: config.DYNAMODB_ENDPOINT });
// The table remembers how many shards its listings are spread over (lib/store.ts): no WRITE_SHARDS to get right.
const { Item: meta } = await documentClient.send(new GetCommand({ TableName: config.TABLE_NAME, Key: { pk: 'META', sk: 'META' }, ConsistentRead: true }));
const orders = new OrderRepository(createStore(documentClient, config.TABLE_NAME, Number(meta?.write_shards ?? config.WRITE_SHARDS)));

/** A requeued order whose item was not fixed is set aside again after POISON_MAX_TRIES tries: say so now. */
const stillUnreadable = async (orderId: string): Promise<string> => {
  try {
    const state = await orders.getState(orderId);
    if (state) checkState(state);
    return '';
  } catch (error) {
    return `, but ${(error as Error).message}: it will be quarantined again`;
  }
};

let failed = 0;
const quarantined = values.list || values.all ? await orders.listQuarantined() : [];
if (values.list) {
  for (const entry of quarantined) process.stdout.write(`${entry.order_id}\tquarantined ${entry.at}\t${entry.error}\n`);
  process.stdout.write(`${quarantined.length} quarantined\n`);
} else {
  for (const orderId of values.all ? quarantined.map((entry) => entry.order_id) : positionals) {
    if (await orders.requeue(orderId, Date.now())) {
      process.stdout.write(`${orderId}: requeued${await stillUnreadable(orderId)}\n`);
    } else {
      failed++;
      process.stdout.write(`${orderId}: not quarantined (unknown, or requeued already)\n`);
    }
  }
}
documentClient.destroy();
process.exit(failed > 0 ? 1 : 0);

import { InternalServerError, ThrottlingException, TransactionCanceledException, TransactionInProgressException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { StoreUnavailable } from '../../lib/errors.ts';
import { isStoreUnavailable, translateStoreError } from '../../lib/orders.ts';

// The one classification of what a store call threw (lib/orders.ts): the store away, overloaded or busy is a
// 503 the client may retry; anything else is a fault, passed on as it is.

const $metadata = { httpStatusCode: 400 };
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({ message: `Transaction cancelled [${codes.join(', ')}]`, $metadata, CancellationReasons: codes.map((Code) => ({ Code })) });

describe('what counts as the store being unavailable', () => {
  it.each([
    ['throttling', new ThrottlingException({ message: 'slow down', $metadata })],
    ['a 500', new InternalServerError({ message: 'down', $metadata: { httpStatusCode: 500 } })],
    ['the same transaction in progress', new TransactionInProgressException({ message: 'busy', $metadata })],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['a transaction cancelled by a write conflict', cancelled('None', 'TransactionConflict')],
    ['a transaction cancelled by throttling', cancelled('ThrottlingError', 'None')],
    ['a transaction cancelled for want of throughput', cancelled('ProvisionedThroughputExceeded')],
    ['a transaction cancelled with no reason given', cancelled('None')],
    // A reason without a code is read as None (every reason DynamoDB sends has one: this is the fallback).
    ['a transaction cancelled with a reason that has no code', new TransactionCanceledException({ message: 'Transaction cancelled', $metadata, CancellationReasons: [{}] })],
    // serverless-offline may load the modules more than once: a StoreUnavailable of another copy is one too.
    ['a StoreUnavailable of another copy of the module', Object.assign(new Error('away'), { name: 'StoreUnavailable' })],
  ])('%s is unavailable, and becomes StoreUnavailable with it as its cause', (_label, error) => {
    expect(isStoreUnavailable(error)).toBe(true);
    const translated = translateStoreError(error);
    expect(translated).toBeInstanceOf(StoreUnavailable);
    expect((translated as Error).cause).toBe(error);
  });

  it.each([
    ['a failed condition among the reasons', cancelled('TransactionConflict', 'ConditionalCheckFailed')],
    ['a malformed write', cancelled('ValidationError', 'None')],
    ['a request DynamoDB rejects', Object.assign(new Error('One or more parameter values were invalid'), { name: 'ValidationException', $metadata })],
    ['a bug', new TypeError('undefined is not a function')],
    ['a thrown string', 'not an error'],
  ])('%s is a fault, passed on as it is', (_label, error) => {
    expect(isStoreUnavailable(error)).toBe(false);
    expect(translateStoreError(error)).toBe(error);
  });

  it('passes a StoreUnavailable on as it is', () => {
    const away = new StoreUnavailable();
    expect(translateStoreError(away)).toBe(away);
  });
});

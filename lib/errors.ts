/** One invalid field of a request. */
export interface FieldError {
  field: string;
  message: string;
}

/** A request breaks a rule of the contract; `errors` names every bad field. */
export class InvalidRequest extends Error {
  override name = 'InvalidRequest';
  constructor(readonly errors: FieldError[]) {
    const fields = new Set(errors.map((e) => e.field)).size;
    super(fields === 1 ? '1 field is invalid' : `${fields} fields are invalid`);
  }
}

/** The order in a request body breaks a rule of the contract. */
export class InvalidOrder extends InvalidRequest {
  override name = 'InvalidOrder';
}

/** The query string of a request breaks a rule of the contract. */
export class InvalidQuery extends InvalidRequest {
  override name = 'InvalidQuery';
}

/** No order has this id. */
export class OrderNotFound extends Error {
  override name = 'OrderNotFound';
  constructor(readonly orderId: string) {
    super(`No order has the id ${orderId}`);
  }
}

/** The order id is taken by an order with different content. */
export class OrderConflict extends Error {
  override name = 'OrderConflict';
  constructor(readonly orderId: string) {
    super(`Order ${orderId} already exists with different content`);
  }
}

/** The store cannot be reached, is throttling, or did not answer in time; the request may be retried. */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
  constructor(options?: ErrorOptions, message = 'The order store is unavailable; retry shortly') {
    super(message, options);
  }
}

/** More requests wait than the service takes in: this one is refused at once (load shedding); retry later. */
export class Overloaded extends Error {
  override name = 'Overloaded';
  constructor() {
    super('Too many requests are waiting for the order store; retry shortly');
  }
}

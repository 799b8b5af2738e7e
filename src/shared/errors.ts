/**
 * Typed errors with stable codes. Every failure Baton reports carries a `code`
 * (listed in docs/errors.md) and a one-line message; HTTP status is chosen at
 * the edge only, from `httpStatus`. This module holds no I/O.
 */

export interface BatonErrorOptions {
  cause?: unknown;
}

export class BatonError extends Error {
  readonly code: string = 'BATON_ERR_INTERNAL';
  /** Status an HTTP edge should answer with. */
  readonly httpStatus: number = 500;

  constructor(message: string, options?: BatonErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message };
  }
}

export class InvalidArgumentError extends BatonError {
  override readonly code = 'BATON_ERR_INVALID_ARGUMENT';
  override readonly httpStatus = 400;
}

export class InvalidConfigError extends BatonError {
  override readonly code = 'BATON_ERR_INVALID_CONFIG';
  override readonly httpStatus = 400;
}

export class MethodNotAllowedError extends BatonError {
  override readonly code = 'BATON_ERR_METHOD_NOT_ALLOWED';
  override readonly httpStatus = 405;
}

export class NotFoundError extends BatonError {
  override readonly code = 'BATON_ERR_NOT_FOUND';
  override readonly httpStatus = 404;
}

export class FunctionNotFoundError extends BatonError {
  override readonly code = 'BATON_ERR_FUNCTION_NOT_FOUND';
  override readonly httpStatus = 404;
  constructor(name: string, options?: BatonErrorOptions) {
    super(`function "${name}" is not registered`, options);
  }
}

export class ConflictError extends BatonError {
  override readonly code = 'BATON_ERR_CONFLICT';
  override readonly httpStatus = 409;
}

export class PayloadTooLargeError extends BatonError {
  override readonly code = 'BATON_ERR_PAYLOAD_TOO_LARGE';
  override readonly httpStatus = 413;
}

/** No sandbox became available within the function's cold-start timeout. */
export class ColdStartTimeoutError extends BatonError {
  override readonly code = 'BATON_ERR_COLD_START_TIMEOUT';
  override readonly httpStatus = 503;
}

/** The function is being deleted; new requests are refused. */
export class FunctionDrainingError extends BatonError {
  override readonly code = 'BATON_ERR_FUNCTION_DRAINING';
  override readonly httpStatus = 503;
}

/** The per-function queue is full. */
export class QueueFullError extends BatonError {
  override readonly code = 'BATON_ERR_QUEUE_FULL';
  override readonly httpStatus = 503;
}

/** The sandbox could not be reached or failed while serving. */
export class SandboxUnreachableError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_UNREACHABLE';
  override readonly httpStatus = 502;
}

/** The sandbox ended (exited, was killed, hit a limit) while it served the request; the message says how. */
export class SandboxExitedError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_EXITED';
  override readonly httpStatus = 502;
}

/** The function did not answer within its execution time-out (`timeoutMs`). */
export class ExecutionTimeoutError extends BatonError {
  override readonly code = 'BATON_ERR_TIMEOUT';
  override readonly httpStatus = 504;
}

/** Sandboxes of the function cannot be started (bad image, crash on start). */
export class SandboxStartError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_START';
  override readonly httpStatus = 502;
}

/** No worker has room for a sandbox. */
export class NoCapacityError extends BatonError {
  override readonly code = 'BATON_ERR_NO_CAPACITY';
  override readonly httpStatus = 503;
}

/** A remote component did not answer in time or is unreachable. */
export class UnavailableError extends BatonError {
  override readonly code = 'BATON_ERR_UNAVAILABLE';
  override readonly httpStatus = 503;
}

export class DeadlineExceededError extends BatonError {
  override readonly code = 'BATON_ERR_DEADLINE_EXCEEDED';
  override readonly httpStatus = 504;
}

export class ClosedError extends BatonError {
  override readonly code = 'BATON_ERR_CLOSED';
  override readonly httpStatus = 503;
}

/** An error that crossed an RPC boundary; keeps the remote code. */
export class RemoteError extends BatonError {
  override readonly code: string;
  override readonly httpStatus: number;
  constructor(code: string, message: string, httpStatus = 500) {
    super(message);
    this.code = code;
    this.httpStatus = httpStatus;
  }
}

/** One-line message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n', 1)[0] ?? err.name;
  return String(err);
}

export function errorCode(err: unknown): string {
  if (err instanceof BatonError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'BATON_ERR_INTERNAL';
}

export function httpStatusOf(err: unknown): number {
  return err instanceof BatonError ? err.httpStatus : 500;
}

/**
 * The cluster store cannot be used right now (unreachable, timed out, disk
 * error): nothing was changed, and the same call may succeed later.
 */
export class StoreError extends BatonError {
  override readonly code = 'BATON_ERR_STORE';
  override readonly httpStatus = 503;
}

/** The cluster store holds a record that does not parse: retrying will not help. */
export class StoreCorruptError extends BatonError {
  override readonly code = 'BATON_ERR_STORE_CORRUPT';
  override readonly httpStatus = 500;
}

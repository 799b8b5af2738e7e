/**
 * Typed errors with stable codes. Every failure Baton reports carries a
 * `code` (one of ERROR_CODES, each listed in docs/errors.md), a one-line
 * message and whether the same call may succeed later (`retryable`, from the
 * code). Callers decide by those fields, never by the message. The HTTP status
 * is chosen at the edges (shared/http-status.ts). This module holds no I/O.
 */

/** Every code, and whether the same call may succeed later without a change by the caller. */
const RETRYABLE = {
  BATON_ERR_INTERNAL: false,
  BATON_ERR_INVALID_ARGUMENT: false,
  BATON_ERR_INVALID_CONFIG: false,
  BATON_ERR_METHOD_NOT_ALLOWED: false,
  BATON_ERR_NOT_FOUND: false,
  BATON_ERR_FUNCTION_NOT_FOUND: false,
  BATON_ERR_CONFLICT: false,
  BATON_ERR_PAYLOAD_TOO_LARGE: false,
  BATON_ERR_COLD_START_TIMEOUT: true,
  BATON_ERR_FUNCTION_DRAINING: false,
  BATON_ERR_QUEUE_FULL: true,
  BATON_ERR_SANDBOX_UNREACHABLE: true,
  BATON_ERR_SANDBOX_EXITED: true,
  BATON_ERR_TIMEOUT: false,
  BATON_ERR_SANDBOX_START: false,
  BATON_ERR_NO_CAPACITY: true,
  BATON_ERR_UNAVAILABLE: true,
  BATON_ERR_DEADLINE_EXCEEDED: true,
  BATON_ERR_CLOSED: true,
  BATON_ERR_STORE: true,
  BATON_ERR_STORE_CORRUPT: false,
  BATON_ERR_NOT_LEADER: true,
  BATON_ERR_STALE_LEADER: false,
  BATON_ERR_UNAUTHENTICATED: false,
} as const;

export type ErrorCode = keyof typeof RETRYABLE;
export const ERROR_CODES = Object.keys(RETRYABLE) as ErrorCode[];

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(RETRYABLE, code);
}

export interface BatonErrorOptions {
  cause?: unknown;
}

export class BatonError extends Error {
  readonly code: ErrorCode = 'BATON_ERR_INTERNAL';

  constructor(message: string, options?: BatonErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
  }

  /** The same call may succeed later, unchanged. */
  get retryable(): boolean {
    return RETRYABLE[this.code];
  }

  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** A bad request; `field`, when known, is the one it names (`port: must be ...`). */
export class InvalidArgumentError extends BatonError {
  override readonly code = 'BATON_ERR_INVALID_ARGUMENT';
  readonly field: string | undefined;
  /** The message without the field. */
  readonly reason: string;

  constructor(message: string, options?: BatonErrorOptions & { field?: string }) {
    const field = options?.field;
    super(field === undefined ? message : `${field}: ${message}`, options);
    this.field = field;
    this.reason = message;
  }
}

export class InvalidConfigError extends BatonError {
  override readonly code = 'BATON_ERR_INVALID_CONFIG';
}

export class MethodNotAllowedError extends BatonError {
  override readonly code = 'BATON_ERR_METHOD_NOT_ALLOWED';
}

export class NotFoundError extends BatonError {
  override readonly code = 'BATON_ERR_NOT_FOUND';
}

export class FunctionNotFoundError extends BatonError {
  override readonly code = 'BATON_ERR_FUNCTION_NOT_FOUND';
  constructor(name: string, options?: BatonErrorOptions) {
    super(`function "${name}" is not registered`, options);
  }
}

export class ConflictError extends BatonError {
  override readonly code = 'BATON_ERR_CONFLICT';
}

export class PayloadTooLargeError extends BatonError {
  override readonly code = 'BATON_ERR_PAYLOAD_TOO_LARGE';
}

/** No sandbox became available within the function's cold-start timeout. */
export class ColdStartTimeoutError extends BatonError {
  override readonly code = 'BATON_ERR_COLD_START_TIMEOUT';
}

/** The function is being deleted; new requests are refused. */
export class FunctionDrainingError extends BatonError {
  override readonly code = 'BATON_ERR_FUNCTION_DRAINING';
}

/**
 * This control plane does not lead (it follows, or it was deposed): the call
 * belongs to the leader, named when known (`host:port` of its RPC service).
 */
export class NotLeaderError extends BatonError {
  override readonly code = 'BATON_ERR_NOT_LEADER';
  readonly leaderRpc: string | undefined;
  constructor(message: string, options?: BatonErrorOptions & { leaderRpc?: string }) {
    super(message, options);
    this.leaderRpc = options?.leaderRpc;
  }
}

/** A call without the credentials it needs (internal RPC: the cluster token; the HTTP API: its token). */
export class UnauthenticatedError extends BatonError {
  override readonly code = 'BATON_ERR_UNAUTHENTICATED';
}

/** A call from a control plane that has been deposed: a newer leader (higher epoch) has been heard. */
export class StaleLeaderError extends BatonError {
  override readonly code = 'BATON_ERR_STALE_LEADER';
}

/** The per-function queue is full. */
export class QueueFullError extends BatonError {
  override readonly code = 'BATON_ERR_QUEUE_FULL';
}

/** The sandbox could not be reached or failed while serving. */
export class SandboxUnreachableError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_UNREACHABLE';
}

/** The sandbox ended (exited, was killed, hit a limit) while it served the request; the message says how. */
export class SandboxExitedError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_EXITED';
}

/** The function did not answer within its execution time-out (`timeoutMs`). */
export class ExecutionTimeoutError extends BatonError {
  override readonly code = 'BATON_ERR_TIMEOUT';
}

/** Sandboxes of the function cannot be started (bad image, crash on start). */
export class SandboxStartError extends BatonError {
  override readonly code = 'BATON_ERR_SANDBOX_START';
}

/** No worker has room for a sandbox. */
export class NoCapacityError extends BatonError {
  override readonly code = 'BATON_ERR_NO_CAPACITY';
}

/** A remote component did not answer in time or is unreachable. */
export class UnavailableError extends BatonError {
  override readonly code = 'BATON_ERR_UNAVAILABLE';
}

export class DeadlineExceededError extends BatonError {
  override readonly code = 'BATON_ERR_DEADLINE_EXCEEDED';
}

export class ClosedError extends BatonError {
  override readonly code = 'BATON_ERR_CLOSED';
}

/**
 * An error that crossed a process boundary (RPC, the HTTP API, a pushed
 * creation failure): keeps the remote code, or INTERNAL with the unknown
 * code in `remoteCode` when this build does not know it.
 */
export class RemoteError extends BatonError {
  override readonly code: ErrorCode;
  readonly remoteCode: string;
  constructor(code: string, message: string) {
    super(message);
    this.remoteCode = code;
    this.code = isErrorCode(code) ? code : 'BATON_ERR_INTERNAL';
  }
}

/** One-line message of any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n', 1)[0] ?? err.name;
  return String(err);
}

/** The code of any thrown value: INTERNAL for what is not a BatonError. */
export function errorCode(err: unknown): ErrorCode {
  return err instanceof BatonError ? err.code : 'BATON_ERR_INTERNAL';
}

/**
 * Whether the same call may succeed later: a BatonError says; anything else
 * (an error of Node or a library) is not known to be permanent, and counts
 * as retryable.
 */
export function isRetryable(err: unknown): boolean {
  return err instanceof BatonError ? err.retryable : true;
}

/**
 * The cluster store cannot be used right now (unreachable, timed out, disk
 * error): nothing was changed, and the same call may succeed later.
 */
export class StoreError extends BatonError {
  override readonly code = 'BATON_ERR_STORE';
}

/** The cluster store holds a record that does not parse: retrying will not help. */
export class StoreCorruptError extends BatonError {
  override readonly code = 'BATON_ERR_STORE_CORRUPT';
}

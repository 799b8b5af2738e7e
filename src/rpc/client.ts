/**
 * Internal RPC client: one TCP connection per peer, multiplexing every call
 * as Baton RPC frames (frames.ts). A lost connection is re-dialled on the
 * next call, with exponential backoff between failed dials; each call waits
 * for a connection only until its deadline. No call is retried here: whether
 * a call is safe to repeat is the caller's decision.
 */
import { connect, type Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';
import {
  ClosedError,
  DeadlineExceededError,
  RemoteError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import { describeZodError } from '../shared/function-spec.js';
import { backoffDelayMs, sleep } from '../shared/time.js';
import type {
  CallMetadata,
  CallOptions,
  Method,
  ServiceClient,
  ServiceContract,
} from './contract.js';
import { MAX_FRAME_CHARS, LineReader, encodeFrame, parseFrame, type ReplyFrame } from './frames.js';

export const DEFAULT_RPC_DEADLINE_MS = 5_000;
const DIAL_BACKOFF_BASE_MS = 50;
const DIAL_BACKOFF_CAP_MS = 2_000;

export interface RpcConnectionOptions {
  host: string;
  port: number;
  logger: Logger;
  /** Name of the peer for logs and errors, e.g. `worker w-1`. */
  peerName?: string;
  /** Headers added to every call, read as each call is sent. */
  metadata?: () => CallMetadata;
  /**
   * While dialing is backing off after failures, fail calls at once
   * (UnavailableError) instead of waiting for the next dial: for a caller
   * with somewhere else to go (a leader channel).
   */
  failFast?: boolean;
  /**
   * Called when an established session closes other than by close(): the
   * peer went away (its process died, or the network broke). With it, the
   * connection is dialed at once rather than at the first call.
   */
  onSessionLost?: () => void;
}

/** One dialled connection and the calls waiting on it, by id. */
interface Session {
  readonly socket: Socket;
  /** Each waiting call's answer handler; `undefined`: the connection is gone. */
  readonly pending: Map<number, (frame: ReplyFrame | undefined) => void>;
  /** Set once the connection is gone: why its calls failed. */
  lost?: Error;
}

export class RpcConnection implements AsyncDisposable {
  readonly #opts: RpcConnectionOptions;
  readonly #peer: string;
  #session: Session | undefined;
  #dialing: Promise<Session> | undefined;
  #failedDials = 0;
  #nextDialAt = 0;
  #nextId = 1;
  #closed = false;

  constructor(options: RpcConnectionOptions) {
    this.#opts = options;
    this.#peer = options.peerName ?? `${options.host}:${options.port}`;
    if (options.onSessionLost !== undefined)
      this.#dial(Date.now() + DIAL_BACKOFF_CAP_MS).catch(() => undefined);
  }

  get peer(): string {
    return this.#peer;
  }

  /** True when a connection is established now (no call needed to find out). */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /** Typed client for one contract over this connection. */
  client<C extends ServiceContract>(contract: C): ServiceClient<C> {
    const out: Record<string, unknown> = {};
    for (const [name, method] of Object.entries(contract.methods)) {
      const path = `/${contract.service}/${name}`;
      out[name] =
        method.kind === 'unary'
          ? (req: unknown, options?: CallOptions) => this.#unary(path, method, req, options)
          : (req: unknown, onItem: (item: unknown) => void, options?: CallOptions) =>
              this.#stream(path, method, req, onItem, options);
    }
    return out as ServiceClient<C>;
  }

  /** Closes the connection once its calls have finished (cut after 1 s); later calls reject with ClosedError. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    if (s === undefined || s.lost !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const cut = setTimeout(() => s.socket.destroy(), 1000);
      cut.unref();
      s.socket.once('close', () => {
        clearTimeout(cut);
        resolve();
      });
      if (s.pending.size === 0) s.socket.end();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #unary(
    path: string,
    method: Method & { kind: 'unary' },
    req: unknown,
    options?: CallOptions,
  ): Promise<unknown> {
    const ok = await this.#call(path, method, req, options, undefined);
    const parsed = method.response.safeParse(ok ?? {});
    if (!parsed.success) {
      throw new UnavailableError(
        `${this.#peer} ${path}: bad response: ${describeZodError(parsed.error)}`,
      );
    }
    return parsed.data;
  }

  async #stream(
    path: string,
    method: Method & { kind: 'stream' },
    req: unknown,
    onItem: (item: unknown) => void,
    options?: CallOptions,
  ): Promise<void> {
    let streamError: Error | undefined;
    await this.#call(path, method, req, options, (item) => {
      if (streamError !== undefined) return;
      const parsed = method.item.safeParse(item);
      if (!parsed.success) {
        streamError = new UnavailableError(
          `${this.#peer} ${path}: bad item: ${describeZodError(parsed.error)}`,
        );
        return;
      }
      onItem(parsed.data);
    });
    if (streamError !== undefined) throw streamError;
  }

  /**
   * Sends one call and settles with its answer: the `ok` value of a unary
   * call, or undefined once a streaming call ended (its items go to onItem).
   */
  async #call(
    path: string,
    method: Method,
    req: unknown,
    options: CallOptions | undefined,
    onItem: ((item: unknown) => void) | undefined,
  ): Promise<unknown> {
    const deadlineAt =
      Date.now() + (options?.deadlineMs ?? method.deadlineMs ?? DEFAULT_RPC_DEADLINE_MS);
    const signal = options?.signal;
    const session = await this.#sessionBefore(deadlineAt, signal, path);
    const remaining = deadlineAt - Date.now();
    if (remaining <= 0) throw new DeadlineExceededError(`${this.#peer} ${path}: deadline exceeded`);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const settle = (err: Error | undefined, value?: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        session.pending.delete(id);
        if (this.#closed && session.pending.size === 0) session.socket.end();
        if (err !== undefined) reject(err);
        else resolve(value);
      };
      const giveUp = (err: Error) => {
        if (session.lost === undefined) session.socket.write(encodeFrame({ id, cancel: true }));
        settle(err);
      };
      const timer = setTimeout(
        () =>
          giveUp(
            new DeadlineExceededError(`${this.#peer} ${path}: no answer within ${remaining} ms`),
          ),
        remaining,
      );
      const onAbort = () => giveUp(new UnavailableError(`${this.#peer} ${path}: call aborted`));
      signal?.addEventListener('abort', onAbort, { once: true });
      session.pending.set(id, (frame) => {
        if (frame === undefined) {
          settle(new UnavailableError(`${this.#peer} ${path}: ${session.lost?.message}`));
          return;
        }
        if (frame.item !== undefined) {
          onItem?.(frame.item);
          return;
        }
        if (frame.error !== undefined) {
          settle(remoteError(frame.error, path, this.#peer));
          return;
        }
        settle(undefined, frame.ok);
      });
      session.socket.write(
        encodeFrame({
          id,
          path,
          meta: this.#opts.metadata?.(),
          deadlineMs: remaining,
          body: req,
        }),
      );
    });
  }

  async #sessionBefore(
    deadlineAt: number,
    signal: AbortSignal | undefined,
    path: string,
  ): Promise<Session> {
    for (;;) {
      if (this.#closed) throw new ClosedError(`connection to ${this.#peer} is closed`);
      const current = this.#session;
      if (current !== undefined) return current;
      if (signal?.aborted === true)
        throw new UnavailableError(`${this.#peer} ${path}: call aborted`);
      const wait = this.#nextDialAt - Date.now();
      if (Date.now() + Math.max(0, wait) >= deadlineAt) {
        throw new UnavailableError(
          `${this.#peer} unreachable (${path}): no connection before the deadline`,
        );
      }
      if (wait > 0 && this.#dialing === undefined) {
        if (this.#opts.failFast === true)
          throw new UnavailableError(`${this.#peer} unreachable (${path}): its last dial failed`);
        await sleep(wait, signal).catch(() => undefined);
        continue;
      }
      try {
        return await this.#dial(deadlineAt);
      } catch {
        // dial failure recorded in #dial; loop until the deadline
      }
    }
  }

  #dial(deadlineAt: number): Promise<Session> {
    this.#dialing ??= new Promise<Session>((resolve, reject) => {
      const socket = connect({
        host: this.#opts.host,
        port: this.#opts.port,
        noDelay: true,
        keepAlive: true,
      });
      const timeout = setTimeout(
        () => socket.destroy(new Error('connect timeout')),
        Math.max(50, Math.min(3_000, deadlineAt - Date.now())),
      );
      const onFail = (err: Error) => {
        clearTimeout(timeout);
        this.#dialing = undefined;
        this.#failedDials++;
        this.#nextDialAt =
          Date.now() + backoffDelayMs(this.#failedDials, DIAL_BACKOFF_BASE_MS, DIAL_BACKOFF_CAP_MS);
        if (this.#failedDials === 1 || this.#failedDials % 20 === 0) {
          this.#opts.logger.debug(
            { peer: this.#peer, attempts: this.#failedDials, err: errorMessage(err) },
            'rpc dial failed',
          );
        }
        reject(err);
      };
      socket.once('error', onFail);
      socket.once('connect', () => {
        clearTimeout(timeout);
        socket.off('error', onFail);
        this.#dialing = undefined;
        this.#failedDials = 0;
        this.#nextDialAt = 0;
        if (this.#closed) {
          socket.destroy();
          reject(new ClosedError(`connection to ${this.#peer} is closed`));
          return;
        }
        const session = this.#open(socket);
        this.#session = session;
        resolve(session);
      });
    });
    return this.#dialing;
  }

  /** Reads answers off a connected socket; when it goes, its calls fail and it is forgotten. */
  #open(socket: Socket): Session {
    const session: Session = { socket, pending: new Map() };
    const reader = new LineReader(MAX_FRAME_CHARS);
    const lose = (why: Error) => {
      if (session.lost !== undefined) return;
      session.lost = why;
      socket.destroy();
      const wasCurrent = this.#session === session;
      if (wasCurrent) this.#session = undefined;
      for (const deliver of [...session.pending.values()]) deliver(undefined);
      if (wasCurrent && !this.#closed) this.#opts.onSessionLost?.();
    };
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    socket.on('data', (chunk: string) => {
      try {
        reader.push(chunk, (line) => {
          const frame = parseFrame<ReplyFrame>(line);
          if (frame === undefined)
            throw new Error('answered with something that is not an RPC frame');
          if (frame.id === 0 && frame.error !== undefined)
            throw new Error(`refused the connection: ${String(frame.error.message)}`);
          session.pending.get(frame.id)?.(frame);
        });
      } catch (err) {
        lose(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.once('close', () => lose(new Error('connection lost')));
    return session;
  }
}

function remoteError(
  error: NonNullable<ReplyFrame['error']>,
  path: string,
  peer: string,
): RemoteError {
  const code = typeof error.code === 'string' ? error.code : 'BATON_ERR_INTERNAL';
  const message = typeof error.message === 'string' ? error.message : `${peer} ${path} failed`;
  return new RemoteError(code, message);
}

/**
 * Internal RPC client: one HTTP/2 session per peer, multiplexing every call.
 * A lost session is re-dialled on the next call, with exponential backoff
 * between failed dials; each call waits for a session only until its
 * deadline. No call is retried here: whether a call is safe to repeat is the
 * caller's decision.
 */
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
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
import {
  RPC_DEADLINE_HEADER,
  RPC_STREAM_ERROR_KEY,
  type CallMetadata,
  type CallOptions,
  type Method,
  type ServiceClient,
  type ServiceContract,
} from './contract.js';

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

export class RpcConnection implements AsyncDisposable {
  readonly #opts: RpcConnectionOptions;
  readonly #authority: string;
  readonly #peer: string;
  #session: ClientHttp2Session | undefined;
  #dialing: Promise<ClientHttp2Session> | undefined;
  #failedDials = 0;
  #nextDialAt = 0;
  #closed = false;

  constructor(options: RpcConnectionOptions) {
    this.#opts = options;
    this.#authority = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    this.#peer = options.peerName ?? `${options.host}:${options.port}`;
    if (options.onSessionLost !== undefined)
      this.#dial(Date.now() + DIAL_BACKOFF_CAP_MS).catch(() => undefined);
  }

  get peer(): string {
    return this.#peer;
  }

  /** True when a session is established now (no call needed to find out). */
  get connected(): boolean {
    const s = this.#session;
    return s !== undefined && !s.closed && !s.destroyed;
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

  /** Closes the session; later calls reject with ClosedError. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    const s = this.#session;
    this.#session = undefined;
    if (s === undefined || s.closed) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000).unref();
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
  ) {
    const deadlineAt =
      Date.now() + (options?.deadlineMs ?? method.deadlineMs ?? DEFAULT_RPC_DEADLINE_MS);
    const { status, text } = await this.#exchange(
      path,
      req,
      deadlineAt,
      options?.signal,
      undefined,
    );
    const body = parseBody(text, path, this.#peer);
    if (status !== 200) throw remoteError(body, status, path, this.#peer);
    const parsed = method.response.safeParse(body);
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
    const deadlineAt =
      Date.now() + (options?.deadlineMs ?? method.deadlineMs ?? DEFAULT_RPC_DEADLINE_MS);
    let streamError: Error | undefined;
    const onLine = (line: string) => {
      if (line.length === 0 || streamError !== undefined) return;
      const value = parseBody(line, path, this.#peer) as Record<string, unknown>;
      const remote = value[RPC_STREAM_ERROR_KEY];
      if (remote !== undefined) {
        streamError = remoteError(remote, 500, path, this.#peer);
        return;
      }
      const parsed = method.item.safeParse(value);
      if (!parsed.success) {
        streamError = new UnavailableError(
          `${this.#peer} ${path}: bad item: ${describeZodError(parsed.error)}`,
        );
        return;
      }
      onItem(parsed.data);
    };
    const { status, text } = await this.#exchange(path, req, deadlineAt, options?.signal, onLine);
    if (status !== 200)
      throw remoteError(parseBody(text, path, this.#peer), status, path, this.#peer);
    if (streamError !== undefined) throw streamError;
  }

  /**
   * Sends one request. With `onLine`, a 200 response body is delivered line by
   * line as it arrives and `text` is empty; otherwise the whole body is returned.
   */
  async #exchange(
    path: string,
    req: unknown,
    deadlineAt: number,
    signal: AbortSignal | undefined,
    onLine: ((line: string) => void) | undefined,
  ): Promise<{ status: number; text: string }> {
    const session = await this.#sessionBefore(deadlineAt, signal, path);
    const remaining = deadlineAt - Date.now();
    if (remaining <= 0) throw new DeadlineExceededError(`${this.#peer} ${path}: deadline exceeded`);
    return new Promise((resolve, reject) => {
      let stream;
      try {
        stream = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/json',
          [RPC_DEADLINE_HEADER]: String(remaining),
          ...this.#opts.metadata?.(),
        });
      } catch (err) {
        this.#dropSession(session);
        reject(new UnavailableError(`${this.#peer} ${path}: ${errorMessage(err)}`, { cause: err }));
        return;
      }
      let status = 0;
      let text = '';
      let settled = false;
      const settle = (err: Error | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err !== undefined) reject(err);
        else resolve({ status, text });
      };
      const timer = setTimeout(() => {
        stream.close(h2.NGHTTP2_CANCEL);
        settle(
          new DeadlineExceededError(`${this.#peer} ${path}: no answer within ${remaining} ms`),
        );
      }, remaining);
      const onAbort = () => {
        stream.close(h2.NGHTTP2_CANCEL);
        settle(new UnavailableError(`${this.#peer} ${path}: call aborted`));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      stream.setEncoding('utf8');
      stream.once('response', (headers) => {
        status = Number(headers[':status']);
      });
      stream.on('data', (chunk: string) => {
        if (onLine === undefined || status !== 200) {
          text += chunk;
          return;
        }
        text += chunk;
        let nl = text.indexOf('\n');
        while (nl >= 0) {
          onLine(text.slice(0, nl));
          text = text.slice(nl + 1);
          nl = text.indexOf('\n');
        }
      });
      stream.once('end', () => {
        if (onLine !== undefined && status === 200 && text.length > 0) {
          onLine(text);
          text = '';
        }
        settle(undefined);
      });
      stream.once('error', (err) =>
        settle(new UnavailableError(`${this.#peer} ${path}: ${errorMessage(err)}`, { cause: err })),
      );
      stream.once('close', () => {
        if (!settled)
          settle(new UnavailableError(`${this.#peer} ${path}: stream closed without an answer`));
      });
      stream.end(JSON.stringify(req));
    });
  }

  async #sessionBefore(
    deadlineAt: number,
    signal: AbortSignal | undefined,
    path: string,
  ): Promise<ClientHttp2Session> {
    for (;;) {
      if (this.#closed) throw new ClosedError(`connection to ${this.#peer} is closed`);
      const current = this.#session;
      if (current !== undefined && !current.closed && !current.destroyed) return current;
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

  #dial(deadlineAt: number): Promise<ClientHttp2Session> {
    this.#dialing ??= new Promise<ClientHttp2Session>((resolve, reject) => {
      const session = connect(this.#authority, {
        settings: { initialWindowSize: 4 * 1024 * 1024 },
        peerMaxConcurrentStreams: 10_000,
      });
      const timeout = setTimeout(
        () => session.destroy(new Error('connect timeout')),
        Math.max(50, Math.min(3_000, deadlineAt - Date.now())),
      );
      let failed = false;
      const onFail = (err: Error) => {
        if (failed) return;
        failed = true;
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
      session.once('error', onFail);
      session.once('connect', () => {
        clearTimeout(timeout);
        // Destroyed between connecting and this event (its time-out fired, or the peer hung up).
        if (failed || session.destroyed) {
          onFail(new Error(`connection to ${this.#peer} closed as it opened`));
          return;
        }
        session.off('error', onFail);
        session.on('error', () => undefined);
        session.setLocalWindowSize(16 * 1024 * 1024);
        session.once('close', () => {
          const lost = this.#session === session && !this.#closed;
          this.#dropSession(session);
          if (lost) this.#opts.onSessionLost?.();
        });
        session.once('goaway', () => this.#dropSession(session));
        this.#dialing = undefined;
        this.#failedDials = 0;
        this.#nextDialAt = 0;
        if (this.#closed) {
          session.close();
          reject(new ClosedError(`connection to ${this.#peer} is closed`));
          return;
        }
        this.#session = session;
        resolve(session);
      });
    });
    return this.#dialing;
  }

  #dropSession(session: ClientHttp2Session): void {
    if (this.#session === session) this.#session = undefined;
    if (!session.destroyed) session.destroy();
  }
}

function parseBody(text: string, path: string, peer: string): unknown {
  try {
    return text.length === 0 ? {} : (JSON.parse(text) as unknown);
  } catch {
    throw new UnavailableError(`${peer} ${path}: answer is not JSON`);
  }
}

function remoteError(body: unknown, status: number, path: string, peer: string): RemoteError {
  const b = (body ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof b.code === 'string' ? b.code : 'BATON_ERR_INTERNAL';
  const message = typeof b.message === 'string' ? b.message : `${peer} ${path} answered ${status}`;
  return new RemoteError(code, message);
}

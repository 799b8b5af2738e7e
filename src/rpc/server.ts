/**
 * Internal RPC server: Baton RPC frames (frames.ts) over TCP, calls named
 * `/<service>/<method>`. Several services can be mounted on one server.
 * Requests are validated against the contract; handler errors reach the
 * caller as `{code, message}`. A connection that sends anything but frames
 * (an HTTP client, say) is answered with one error frame and closed. Leaves
 * out TLS; authentication is the cluster token checked by `admit`
 * (cluster-token.ts).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../shared/logger.js';
import {
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  DeadlineExceededError,
  errorCode,
  errorMessage,
} from '../shared/errors.js';
import { httpStatusOf } from '../shared/http-status.js';
import { describeZodError } from '../shared/function-spec.js';
import {
  callAbortController,
  type AdmitCall,
  type CallContext,
  type Method,
  type ServiceContract,
  type ServiceHandlers,
} from './contract.js';
import {
  FrameTooLargeError,
  LineReader,
  MAX_FRAME_CHARS,
  encodeFrame,
  parseFrame,
  type CallFrame,
  type ReplyFrame,
} from './frames.js';

/**
 * Connections the kernel may hold before they are accepted (capped by
 * net.core.somaxconn). Node's default, 511, is exceeded when thousands of
 * workers start at once (`baton up --workers 5000`): the dropped connection
 * attempts are retried by TCP only a second or more later.
 */
const LISTEN_BACKLOG = 4096;

interface Route {
  method: Method;
  handler: (...args: never[]) => Promise<unknown>;
}

export interface RpcServerOptions {
  logger: Logger;
  /** Longest frame taken, in characters (a longer one closes its connection). */
  maxBodyBytes?: number;
  /** Checks every call's metadata before its handler runs. */
  admit?: AdmitCall;
  /** Longest a frame may take to arrive once begun (default PARTIAL_FRAME_TIMEOUT_MS). */
  partialFrameTimeoutMs?: number;
}

/**
 * A frame begun and not finished within this long closes its connection: a
 * peer sending half a frame, or one byte now and then, would otherwise hold
 * a socket and its buffered text for as long as it likes. A 64 MiB frame
 * over a 100 Mbit/s link takes about 5 s.
 */
export const PARTIAL_FRAME_TIMEOUT_MS = 30_000;

/** One caller's connection and the calls it has running. */
interface Connection {
  readonly socket: Socket;
  readonly peer: string;
  readonly calls: Map<number, RunningCall>;
}

/**
 * What a handler is told of its call. A class: a getter in an object
 * literal is defined anew on every call, a slow path in V8 (6.7 of the
 * control plane's 179 µs of CPU per heartbeat, with 5000 workers).
 */
class HandlerContext implements CallContext {
  readonly #call: RunningCall;
  readonly peer: string;

  constructor(call: RunningCall, peer: string) {
    this.#call = call;
    this.peer = peer;
  }

  /** Made when first asked for: most handlers never look. */
  get signal(): AbortSignal {
    return this.#call.signal;
  }
}

/**
 * The server's deadline fires this long after the caller's: the caller's
 * own timer decides the outcome (DeadlineExceededError). Measured from
 * whole milliseconds on receipt, the server's fired up to a millisecond
 * first, and a handler that answered on its abort beat the caller's
 * rejection (rpc.test.ts failed about once in 30 runs).
 */
const DEADLINE_GRACE_MS = 20;

/**
 * A call being handled. Its signal (aborted when the caller leaves or the
 * deadline passes) is made only if the handler asks for it: most never do,
 * and an AbortController and a timer per call showed in profiles.
 */
class RunningCall {
  readonly #startedAt: number;
  readonly #deadlineMs: number;
  #controller: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #abortedWith: Error | undefined;

  constructor(startedAt: number, deadlineMs: number) {
    this.#startedAt = startedAt;
    this.#deadlineMs = deadlineMs;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = callAbortController();
      if (this.#abortedWith !== undefined) this.#controller.abort(this.#abortedWith);
      else if (Number.isFinite(this.#deadlineMs) && this.#deadlineMs > 0) {
        const left = this.#startedAt + this.#deadlineMs - Date.now() + DEADLINE_GRACE_MS;
        this.#timer = setTimeout(
          () => this.abort(new Error('deadline exceeded')),
          Math.max(0, left),
        );
      }
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    this.#abortedWith ??= reason;
    this.#controller?.abort(reason);
  }

  finish(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}

export class RpcServer implements AsyncDisposable {
  readonly #server: Server;
  readonly #routes = new Map<string, Route>();
  readonly #connections = new Set<Connection>();
  readonly #logger: Logger;
  readonly #maxBodyBytes: number;
  readonly #admit: AdmitCall | undefined;
  readonly #partialFrameTimeoutMs: number;
  #closing: Promise<void> | undefined;

  constructor(options: RpcServerOptions) {
    this.#logger = options.logger;
    this.#maxBodyBytes = options.maxBodyBytes ?? MAX_FRAME_CHARS;
    this.#partialFrameTimeoutMs = options.partialFrameTimeoutMs ?? PARTIAL_FRAME_TIMEOUT_MS;
    this.#admit = options.admit;
    this.#server = createServer({ noDelay: true, keepAlive: true }, (socket) =>
      this.#accept(socket),
    );
  }

  /** Mounts a service. Throws if one of its paths is already mounted. */
  mount<C extends ServiceContract>(contract: C, handlers: ServiceHandlers<C>): this {
    for (const [name, method] of Object.entries(contract.methods)) {
      const path = `/${contract.service}/${name}`;
      if (this.#routes.has(path)) throw new Error(`rpc path ${path} is mounted twice`);
      const handler = (handlers as Record<string, Route['handler']>)[name];
      if (handler === undefined) throw new Error(`no handler for ${path}`);
      this.#routes.set(path, { method, handler: handler.bind(handlers) });
    }
    return this;
  }

  /** Starts listening; resolves with the bound address. Port 0 picks a free port. */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting; connections close once their calls finished (cut after 1 s). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const c of this.#connections) if (c.calls.size === 0) c.socket.end();
      setTimeout(() => {
        for (const c of this.#connections) c.socket.destroy();
      }, 1000).unref();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(socket: Socket): void {
    const conn: Connection = { socket, peer: socket.remoteAddress ?? '?', calls: new Map() };
    this.#connections.add(conn);
    const reader = new LineReader(this.#maxBodyBytes);
    socket.setEncoding('utf8');
    socket.on('error', () => undefined);
    // Timing the frame under way: from its first piece, restarted whenever one finishes.
    let partial: NodeJS.Timeout | undefined;
    socket.on('data', (chunk: string) => {
      let finished = false;
      try {
        reader.push(chunk, (line) => {
          finished = true;
          this.#onFrame(conn, line);
        });
      } catch (err) {
        if (!(err instanceof FrameTooLargeError)) throw err;
        refuse(conn, new PayloadTooLargeError(err.message));
        return;
      }
      if (finished || !reader.holding) {
        clearTimeout(partial);
        partial = undefined;
      }
      if (reader.holding)
        partial ??= setTimeout(() => {
          const ms = this.#partialFrameTimeoutMs;
          refuse(
            conn,
            new DeadlineExceededError(`rpc frame begun and not finished within ${ms} ms`),
          );
        }, this.#partialFrameTimeoutMs);
    });
    socket.once('close', () => {
      clearTimeout(partial);
      this.#connections.delete(conn);
      for (const c of conn.calls.values()) c.abort(new Error('caller went away'));
      conn.calls.clear();
    });
  }

  #onFrame(conn: Connection, line: string): void {
    if (conn.socket.writableEnded) return;
    const frame = parseFrame<CallFrame>(line);
    if (frame === undefined) {
      refuse(
        conn,
        new InvalidArgumentError(
          'not a Baton RPC frame (this port takes newline-delimited JSON frames, see src/rpc/frames.ts)',
        ),
      );
      return;
    }
    const { id } = frame;
    if (frame.cancel === true) {
      conn.calls.get(id)?.abort(new Error('caller went away'));
      return;
    }
    if (conn.calls.has(id)) {
      refuse(conn, new InvalidArgumentError(`rpc call id ${id} is already running`));
      return;
    }
    const path = typeof frame.path === 'string' ? frame.path : '';
    const route = this.#routes.get(path);
    if (route === undefined) {
      send(conn, errorFrame(id, new NotFoundError(`no rpc method ${path}`)));
      return;
    }
    if (this.#admit !== undefined) {
      const meta = (
        typeof frame.meta === 'object' && frame.meta !== null ? frame.meta : {}
      ) as Record<string, unknown>;
      try {
        this.#admit((name) => {
          const v = meta[name];
          return typeof v === 'string' ? v : undefined;
        });
      } catch (err) {
        send(conn, errorFrame(id, err));
        return;
      }
    }
    const parsed = route.method.request.safeParse(frame.body ?? {});
    if (!parsed.success) {
      send(
        conn,
        errorFrame(id, new InvalidArgumentError(`${path}: ${describeZodError(parsed.error)}`)),
      );
      return;
    }
    const call = new RunningCall(Date.now(), Number(frame.deadlineMs));
    conn.calls.set(id, call);
    const done = (reply: ReplyFrame) => {
      call.finish();
      if (conn.calls.get(id) !== call) return;
      conn.calls.delete(id);
      send(conn, reply);
      if (this.#closing !== undefined && conn.calls.size === 0) conn.socket.end();
    };
    const ctx = new HandlerContext(call, conn.peer);
    const fail = (err: unknown) => {
      this.#logFailure(err, path);
      done(errorFrame(id, err));
    };
    if (route.method.kind === 'unary') {
      const handler = route.handler as (req: unknown, ctx: CallContext) => Promise<unknown>;
      invoke(() => handler(parsed.data, ctx)).then((ok) => done({ id, ok: ok ?? {} }), fail);
    } else {
      const handler = route.handler as (
        req: unknown,
        emit: (item: unknown) => void,
        ctx: CallContext,
      ) => Promise<void>;
      const emit = (item: unknown) => {
        if (conn.calls.get(id) === call) send(conn, { id, item });
      };
      invoke(() => handler(parsed.data, emit, ctx)).then(() => done({ id, end: true }), fail);
    }
  }

  #logFailure(err: unknown, path: string): void {
    // A follower's refusal is how callers find the leader, not a failure.
    if (httpStatusOf(err) >= 500 && errorCode(err) !== 'BATON_ERR_NOT_LEADER') {
      this.#logger.warn(
        { path, code: errorCode(err), err: errorMessage(err) },
        'rpc handler failed',
      );
    }
  }
}

/** A handler's promise; one that throws before returning it fails like one that rejects. */
function invoke<T>(run: () => Promise<T>): Promise<T> {
  try {
    return run();
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function errorFrame(id: number, err: unknown): ReplyFrame {
  return { id, error: { code: errorCode(err), message: errorMessage(err) } };
}

function send(conn: Connection, frame: ReplyFrame): void {
  if (!conn.socket.destroyed && !conn.socket.writableEnded) conn.socket.write(encodeFrame(frame));
}

/** Answers a connection that broke the protocol once, and closes it. */
function refuse(conn: Connection, err: unknown): void {
  send(conn, errorFrame(0, err));
  conn.socket.destroySoon();
}

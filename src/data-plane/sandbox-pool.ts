/**
 * HTTP/1.1 keep-alive connections to one sandbox address, one request at a
 * time on each, as many connections as requests in flight. A data plane's
 * upstream client, written for it: undici's dispatch API, the leanest
 * general client Node has, cost a bare Node proxy about 60 µs of CPU per
 * request more than this, and the data plane 19-22 µs (a tenth of its CPU
 * per warm request; docs/benchmarks.md), for a job that is one request
 * head written and one response read (`http1-response.ts`).
 *
 * The pool opens its first connection at once, before any request needs
 * it: a new address is a sandbox that just became ready, and its first
 * request is often the cold one that waited for it. An idle connection is
 * closed after KEEP_ALIVE_MS, or sooner when the sandbox said it keeps
 * idle ones for less (`Keep-Alive: timeout=N`: Node's servers close them
 * after 5 s), and the early one after EARLY_CONNECTION_IDLE_MS if no
 * request took it. A request is never sent twice: a connection that closes
 * before the answer fails its request (the sandbox may have run it).
 */
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ResponseParser, type ResponseSink } from './http1-response.js';

export interface SandboxRequest {
  method: string;
  /** Path and query. */
  path: string;
  /**
   * The head's header lines, each ended by CRLF, sent as given (values as
   * HTTP/1.1 or HTTP/2 parsed them, so without CR or LF; proxy.ts writes them).
   */
  headerLines: string;
  /** The lines hold a `content-length`: a body is sent as it comes (chunked otherwise). */
  sized: boolean;
  body: Readable | null;
}

export interface ResponseHandler {
  /** The final answer's head, as ResponseSink.head gives it (informational ones are skipped). */
  onResponseStart(status: number, raw: string[], length: number): void;
  /** A piece of the body; false asks for no more until the call's `resume()`. */
  onResponseData(chunk: Buffer): boolean;
  onResponseEnd(): void;
  /** No answer, or a broken one. Never after onResponseEnd, nor after `abort()`. */
  onResponseError(err: Error): void;
}

export interface SandboxCall {
  /** Gives up on the answer: its connection is closed, its handler hears nothing more. */
  abort(): void;
  /** Reads on after onResponseData returned false. */
  resume(): void;
}

/** The request's own body failed (its client broke it off): not the sandbox's doing. */
export class RequestBodyError extends Error {}

const KEEP_ALIVE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** An early connection no request took within this time is closed (servers drop idle ones). */
const EARLY_CONNECTION_IDLE_MS = 20_000;
/** A sandbox's keep-alive time is cut by this much, so that the data plane closes first. */
const KEEP_ALIVE_MARGIN_MS = 1_000;
const SWEEP_MS = 1_000;

export class SandboxPool {
  readonly host: string;
  readonly port: number;
  /** Idle connections, the most recently used last. */
  readonly free: Connection[] = [];
  readonly #all = new Set<Connection>();
  #closing = false;

  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
    this.free.push(this.#open(true));
    pools.add(this);
    sweeper ??= setInterval(sweep, SWEEP_MS).unref();
  }

  get closing(): boolean {
    return this.#closing;
  }

  /** Open connections (idle or busy). */
  get connections(): number {
    return this.#all.size;
  }

  request(req: SandboxRequest, handler: ResponseHandler): SandboxCall {
    const call = new Call(req, handler);
    if (this.#closing) {
      handler.onResponseError(new Error('the connection pool is closed'));
      return call;
    }
    let idle = this.free.pop();
    // One closed meanwhile leaves the list when its close is heard.
    while (idle?.socket.destroyed === true) idle = this.free.pop();
    (idle ?? this.#open(false)).send(call);
    return call;
  }

  #open(early: boolean): Connection {
    const c = new Connection(this, early);
    this.#all.add(c);
    return c;
  }

  forget(c: Connection): void {
    this.#all.delete(c);
    const i = this.free.lastIndexOf(c);
    if (i >= 0) this.free.splice(i, 1);
  }

  /** Closes idle connections now and busy ones once their answer is read. */
  close(): void {
    this.#closing = true;
    pools.delete(this);
    for (const c of [...this.free]) c.socket.destroy();
  }

  /** Closes every connection now; requests in flight fail. */
  destroy(): void {
    this.close();
    for (const c of [...this.#all]) c.socket.destroy();
  }
}

const pools = new Set<SandboxPool>();
let sweeper: NodeJS.Timeout | undefined;

/** Closes connections idle for longer than they may be. */
function sweep(): void {
  const now = performance.now();
  for (const pool of pools)
    for (const c of pool.free) if (now - c.idleSince > c.idleLimitMs) c.socket.destroy();
  if (pools.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

class Call implements SandboxCall {
  readonly req: SandboxRequest;
  readonly handler: ResponseHandler;
  conn: Connection | undefined;
  over = false;
  /** Stops feeding the request body to the connection. */
  stopBody: (() => void) | undefined;

  constructor(req: SandboxRequest, handler: ResponseHandler) {
    this.req = req;
    this.handler = handler;
  }

  abort(): void {
    if (this.over) return;
    this.over = true;
    this.stopBody?.();
    this.conn?.socket.destroy();
  }

  resume(): void {
    if (!this.over && this.conn?.call === this) this.conn.socket.resume();
  }
}

const connectTimedOut = (): Error =>
  Object.assign(new Error(`connect timed out after ${CONNECT_TIMEOUT_MS} ms`), {
    code: 'ETIMEDOUT',
  });

class Connection implements ResponseSink {
  readonly socket: Socket;
  readonly #pool: SandboxPool;
  readonly #parser = new ResponseParser(this);
  call: Call | undefined;
  idleSince = performance.now();
  idleLimitMs: number;
  #error: Error | undefined;
  #writingBody = false;
  /** The answer was read in full while its bytes were being parsed: release once they are. */
  #answered = false;

  constructor(pool: SandboxPool, early: boolean) {
    this.#pool = pool;
    this.idleLimitMs = early ? EARLY_CONNECTION_IDLE_MS : KEEP_ALIVE_MS;
    const socket = connect({ host: pool.host, port: pool.port, noDelay: true, keepAlive: true });
    this.socket = socket;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(connectTimedOut()));
    socket.once('connect', () => socket.setTimeout(0));
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (err) => (this.#error ??= err));
    socket.on('close', () => this.#onClose());
  }

  send(call: Call): void {
    this.call = call;
    call.conn = this;
    const { method, path, headerLines, sized, body } = call.req;
    this.#parser.expect(method === 'HEAD');
    const head = `${method} ${path} HTTP/1.1\r\n${headerLines}`;
    if (body === null) {
      this.socket.write(`${head}\r\n`, 'latin1');
      return;
    }
    const chunked = !sized;
    // The head waits for the body (corked) until it ends or this turn is
    // over: a small body (a gRPC message: no content-length, so chunked) has
    // come with its headers, and head, body and end go out in one write.
    this.socket.cork();
    this.socket.write(
      chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`,
      'latin1',
    );
    this.#sendBody(call, body, chunked);
  }

  #sendBody(call: Call, body: Readable, chunked: boolean): void {
    const socket = this.socket;
    this.#writingBody = true;
    let corked = true;
    const flush = () => {
      if (!corked) return;
      corked = false;
      socket.uncork();
    };
    // A body still coming after this turn streams as it arrives.
    setImmediate(flush);
    const onDrain = () => body.resume();
    const onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(chunk);
      if (!ok) {
        body.pause();
        socket.once('drain', onDrain);
      }
    };
    const onEnd = () => {
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      stop();
      this.#writingBody = false;
    };
    const onError = (err: Error) => {
      stop();
      this.#fail(call, new RequestBodyError(`the request body broke off: ${err.message}`));
      socket.destroy();
    };
    const stop = () => {
      flush();
      call.stopBody = undefined;
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      socket.off('drain', onDrain);
    };
    call.stopBody = stop;
    body.on('data', onData);
    body.once('end', onEnd);
    body.on('error', onError);
  }

  // ---- the answer, from the parser ----

  head(status: number, raw: string[], length: number): void {
    const call = this.call!;
    if (!call.over) call.handler.onResponseStart(status, raw, length);
  }

  data(chunk: Buffer): void {
    const call = this.call!;
    if (!call.over && !call.handler.onResponseData(chunk)) this.socket.pause();
  }

  end(): void {
    const call = this.call!;
    this.#answered = true;
    if (call.over) return;
    call.over = true;
    call.handler.onResponseEnd();
  }

  // ---- the socket ----

  #onData(d: Buffer): void {
    const call = this.call;
    if (call === undefined || call.over) {
      // Bytes nobody asked for, or the rest of an answer given up on.
      this.socket.destroy();
      return;
    }
    try {
      this.#parser.feed(d);
    } catch (err) {
      this.#fail(call, err as Error);
      this.socket.destroy();
      return;
    }
    if (this.#answered) this.#release();
  }

  /** The answer is read: the connection waits for the next request, or closes. */
  #release(): void {
    this.#answered = false;
    const call = this.call!;
    call.stopBody?.();
    this.call = undefined;
    const parser = this.#parser;
    if (!parser.reusable || this.#writingBody || this.#pool.closing || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    // Paused for the last reader (its last piece filled the client's side): the next one reads afresh.
    this.socket.resume();
    const hint = parser.keepAliveHintMs;
    this.idleLimitMs =
      hint === undefined ? KEEP_ALIVE_MS : Math.min(KEEP_ALIVE_MS, hint - KEEP_ALIVE_MARGIN_MS);
    this.idleSince = performance.now();
    this.#pool.free.push(this);
  }

  #onClose(): void {
    this.#pool.forget(this);
    const call = this.call;
    if (call !== undefined && !call.over) {
      if (this.#error === undefined && this.#parser.started) {
        // An answer whose body runs until the connection closes ends here; any other is cut short.
        try {
          this.#parser.closed();
        } catch (err) {
          this.#fail(call, err as Error);
        }
      } else this.#fail(call, this.#error ?? new Error('the sandbox closed the connection'));
    }
    this.call = undefined;
  }

  #fail(call: Call, err: Error): void {
    if (call.over) return;
    call.over = true;
    call.stopBody?.();
    call.handler.onResponseError(err);
  }
}

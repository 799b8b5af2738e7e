/**
 * One client request and its answer, whichever protocol carried it: an
 * HTTP/2 stream as Node's core API gives it (no compatibility objects: they
 * were a fifth of the data plane's CPU per warm request, docs/benchmarks.md),
 * or an HTTP/1.1 request and response. Everything the data plane does with a
 * client goes through this: read what was asked, answer once (whole, or a
 * head and then a streamed body), learn when the client is gone.
 *
 * Left out: trailers, informational answers other than `100 Continue`,
 * server push.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type { Readable, Writable } from 'node:stream';
import { declaresBody } from '../shared/http-headers.js';

export type AnswerHeaders = Record<string, string | string[] | number>;

export interface Exchange {
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  /** `Host` (HTTP/1.1) or `:authority` (HTTP/2), port included; undefined when absent. */
  readonly authority: string | undefined;
  /** The request's headers (HTTP/2 pseudo-headers among them, starting with ':'). */
  readonly headers: IncomingHttpHeaders;
  /** Whether a body follows the headers. */
  readonly hasBody: boolean;
  /** The request body. */
  readonly body: Readable;
  /** Whether the answer's head was sent. */
  readonly answered: boolean;
  /** Whether the client's stream or connection is closed (its answer written or not). */
  readonly gone: boolean;
  /** Whether the whole answer was handed to the connection. */
  readonly finished: boolean;
  /** The answer's status; 0 until a head is sent. */
  readonly status: number;
  /**
   * Answers whole: head, body and end together. Does nothing once answered
   * or gone. `headers` become the exchange's (HTTP/2 adds its `:status` to
   * them rather than copy them): give a fresh object.
   */
  reply(status: number, headers: AnswerHeaders, body?: Buffer | string): void;
  /** Sends the head (`headers` as for reply); the body is written to what it returns, which is ended by the caller. */
  replyHead(status: number, headers: AnswerHeaders): Writable;
  /** Calls `listener` once, when the exchange is over: answered in full, or the client left. */
  onClose(listener: () => void): void;
  offClose(listener: () => void): void;
  /** Cuts the client off (an answer that cannot be completed). */
  destroy(): void;
}

const ignore = (): void => undefined;

/** Told when an HTTP/2 exchange's stream closes (the listener's count of a session's open streams). */
export interface StreamCloseWatch {
  streamClosed(): void;
}

/**
 * An HTTP/2 stream, from the server's 'stream' event. Its one 'close'
 * listener calls those given to onClose: every request had three of
 * Node's `once` listeners (each a wrapper made and bound, one removed by
 * searching the list), a few per cent of the data plane's CPU per warm
 * request.
 */
export class Http2Exchange implements Exchange {
  readonly #stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly #watch: StreamCloseWatch | undefined;
  /** Called once when the stream closes; undefined once it did. */
  #onClose: Array<() => void> | undefined = [];
  status = 0;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, watch?: StreamCloseWatch) {
    this.#stream = stream;
    this.headers = headers;
    this.#watch = watch;
    // A client that resets its stream must not throw in the data plane.
    stream.on('error', ignore);
    stream.on('close', () => this.#closed());
    if (headers.expect === '100-continue' && !stream.endAfterHeaders)
      stream.additionalHeaders({ ':status': 100 });
  }

  #closed(): void {
    const listeners = this.#onClose;
    if (listeners === undefined) return;
    this.#onClose = undefined;
    this.#watch?.streamClosed();
    for (const listener of listeners) listener();
  }

  get method(): string {
    return (this.headers[':method'] as string | undefined) ?? 'GET';
  }
  get url(): string {
    return (this.headers[':path'] as string | undefined) ?? '/';
  }
  get authority(): string | undefined {
    // An explicit Host wins, as Dirigent's clients set it beside `:authority`.
    return this.headers.host ?? (this.headers[':authority'] as string | undefined);
  }
  get hasBody(): boolean {
    return !this.#stream.endAfterHeaders;
  }
  get body(): Readable {
    return this.#stream;
  }
  get answered(): boolean {
    return this.#stream.headersSent;
  }
  get gone(): boolean {
    return this.#stream.destroyed;
  }
  get finished(): boolean {
    // A stream the client reset counts as ended too: only a clean close says the answer went out.
    const s = this.#stream;
    return s.writableFinished && (s.rstCode === undefined || s.rstCode === 0);
  }

  reply(status: number, headers: AnswerHeaders, body?: Buffer | string): void {
    const s = this.#stream;
    if (s.destroyed || s.headersSent) return;
    const empty = body === undefined || body.length === 0;
    if (!this.#respond(status, headers, empty)) return;
    if (!empty) s.end(body);
  }

  replyHead(status: number, headers: AnswerHeaders): Writable {
    const s = this.#stream;
    if (!s.destroyed && !s.headersSent) this.#respond(status, headers, false);
    return s;
  }

  #respond(status: number, headers: AnswerHeaders, endStream: boolean): boolean {
    this.status = status;
    try {
      headers[':status'] = status;
      this.#stream.respond(headers, { endStream });
      return true;
    } catch {
      // A header HTTP/2 forbids (one a sandbox sent): the answer cannot be given.
      this.#stream.close(0x2 /* INTERNAL_ERROR */);
      return false;
    }
  }

  onClose(listener: () => void): void {
    // As with a stream's own 'close' event, one given after the close is never called.
    this.#onClose?.push(listener);
  }
  offClose(listener: () => void): void {
    const listeners = this.#onClose;
    if (listeners === undefined) return;
    const i = listeners.lastIndexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  }
  destroy(): void {
    this.#stream.destroy();
  }
}

/** An HTTP/1.1 request and response, from Node's HTTP/1 server. */
export class Http1Exchange implements Exchange {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.#req = req;
    this.#res = res;
  }

  get method(): string {
    return this.#req.method ?? 'GET';
  }
  get url(): string {
    return this.#req.url ?? '/';
  }
  get authority(): string | undefined {
    return this.#req.headers.host;
  }
  get headers(): IncomingHttpHeaders {
    return this.#req.headers;
  }
  get hasBody(): boolean {
    return declaresBody(this.#req.headers);
  }
  get body(): Readable {
    return this.#req;
  }
  get answered(): boolean {
    return this.#res.headersSent;
  }
  get gone(): boolean {
    return this.#res.destroyed;
  }
  get finished(): boolean {
    return this.#res.writableFinished;
  }
  get status(): number {
    return this.#res.headersSent ? this.#res.statusCode : 0;
  }

  reply(status: number, headers: AnswerHeaders, body?: Buffer | string): void {
    const res = this.#res;
    if (res.destroyed || res.headersSent) return;
    try {
      res.writeHead(status, headers);
    } catch {
      res.destroy();
      return;
    }
    res.end(body);
  }

  replyHead(status: number, headers: AnswerHeaders): Writable {
    const res = this.#res;
    if (!res.destroyed && !res.headersSent) res.writeHead(status, headers);
    return res;
  }

  onClose(listener: () => void): void {
    this.#res.once('close', listener);
  }
  offClose(listener: () => void): void {
    this.#res.off('close', listener);
  }
  destroy(): void {
    this.#res.destroy();
  }
}

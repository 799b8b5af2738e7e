/**
 * One client request and its answer, whichever protocol carried it: an
 * HTTP/2 stream of the data plane's own server (h2/stream.ts), or an
 * HTTP/1.1 request and response of Node's. Everything the data plane does with a
 * client goes through this: read what was asked, answer once (whole, or a
 * head and then a streamed body), learn when the client is gone.
 *
 * Left out: trailers, informational answers other than `100 Continue`,
 * server push.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
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

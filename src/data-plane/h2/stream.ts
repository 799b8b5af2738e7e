/**
 * One HTTP/2 request stream of the data plane's server (session.ts), as
 * the Exchange the request handler sees. Nothing is made per stream that
 * the request does not use: the body is a Readable only once asked for
 * (InVitro's requests have none), the answer a Writable only when it is
 * streamed, and a small answer goes out as one write of HEADERS and DATA.
 *
 * Left out: trailers (a request's are read and dropped), server push,
 * priorities (read and ignored, as RFC 9113 allows).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable, Writable } from 'node:stream';
import type { AnswerHeaders, Exchange } from '../exchange.js';
import { ErrorCode, FrameType, dataFrame, headersFrames, u32Frame } from './frames.js';
import { encodeResponseHead } from './hpack.js';

/** What a stream needs from its session. */
export interface StreamOwner {
  /** Writes to the connection (nothing once it is closed). */
  write(bytes: Buffer): void;
  /** The peer's largest frame payload. */
  readonly maxFrameBytes: number;
  /** The connection's send window (octets of DATA the peer takes now). */
  sendWindow: number;
  /** Calls the stream's `flush()` once the connection's send window grows. */
  waitForWindow(stream: H2Stream): void;
  /** Tells the peer that `bytes` of DATA on the stream were read (WINDOW_UPDATE for it and the connection). */
  credit(streamId: number, bytes: number, streamToo: boolean): void;
  /** Calls `done` once the connection has room for more writes. */
  whenDrained(done: () => void): void;
  /**
   * The stream closed (either way): forget it. `peerMaySend`: we reset it
   * before the peer ended its side, so its frames may still be on their way.
   */
  closed(stream: H2Stream, peerMaySend: boolean): void;
}

interface Pending {
  data: Buffer;
  end: boolean;
  done: (() => void) | undefined;
}

const EMPTY = Buffer.alloc(0);
const ignore = (): void => undefined;

export class StreamResetError extends Error {
  readonly code = 'ERR_HTTP2_STREAM_ERROR';
}

export class H2Stream implements Exchange {
  readonly id: number;
  readonly headers: IncomingHttpHeaders;
  readonly hasBody: boolean;
  /** The peer's window for this stream's DATA. */
  sendWindow: number;
  /** Octets of DATA the peer may still send on the stream before it hears from us. */
  recvWindow: number;
  /** The request's `content-length`, when it gave one (checked against its DATA). */
  readonly declaredLength: number;
  /** Octets of request body received. */
  received = 0;
  status = 0;
  /** The peer ended its side (END_STREAM), or the stream is closed. */
  remoteEnded: boolean;
  #headSent = false;
  #localEnded = false;
  #closed = false;
  #resetCode = -1;
  #resetByUs = false;
  readonly #owner: StreamOwner;
  #onClose: Array<() => void> | undefined = [];
  /** Body pieces received before anyone asked for the body. */
  #early: Buffer[] | undefined;
  #body: Readable | undefined;
  /** Body octets handed to the reader and not yet credited back to the peer. */
  #uncredited = 0;
  /** DATA waiting for window, in order. */
  #pending: Pending[] = [];
  #out: Writable | undefined;

  constructor(
    owner: StreamOwner,
    id: number,
    headers: IncomingHttpHeaders,
    endStream: boolean,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.#owner = owner;
    this.id = id;
    this.headers = headers;
    this.hasBody = !endStream;
    this.remoteEnded = endStream;
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
    const length = headers['content-length'];
    this.declaredLength = length === undefined ? -1 : Number(length);
    if (headers.expect === '100-continue' && !endStream)
      owner.write(headersFrames(id, encodeResponseHead(100, {}), false, owner.maxFrameBytes));
  }

  get method(): string {
    return this.headers[':method'] as string;
  }
  get url(): string {
    return (this.headers[':path'] as string | undefined) ?? '/';
  }
  get authority(): string | undefined {
    // An explicit Host wins, as Dirigent's clients set it beside `:authority`.
    return this.headers.host ?? (this.headers[':authority'] as string | undefined);
  }
  get answered(): boolean {
    return this.#headSent;
  }
  get gone(): boolean {
    return this.#closed;
  }
  get finished(): boolean {
    return this.#localEnded && this.#pending.length === 0 && this.#resetCode <= 0;
  }

  get body(): Readable {
    if (this.#body !== undefined) return this.#body;
    const body = new Readable({ read: () => this.#creditRead() });
    this.#body = body;
    if (this.#early !== undefined) for (const piece of this.#early) this.#push(piece);
    this.#early = undefined;
    if (this.remoteEnded && this.#resetCode <= 0) body.push(null);
    else if (this.#closed) body.destroy(new StreamResetError('the client reset the stream'));
    return body;
  }

  /** DATA from the peer (already checked against the windows). */
  receive(data: Buffer, end: boolean): void {
    this.received += data.length;
    if (data.length > 0) {
      if (this.#body !== undefined) this.#push(data);
      else (this.#early ??= []).push(data);
    }
    if (end) {
      this.remoteEnded = true;
      this.#body?.push(null);
      if (this.#localEnded) this.#close(-1);
    }
  }

  #push(data: Buffer): void {
    this.#uncredited += data.length;
    if (this.#body!.push(data)) this.#creditRead();
  }

  /** The reader wants more: what it was given so far is credited back to the peer. */
  #creditRead(): void {
    const n = this.#uncredited;
    if (n === 0) return;
    this.#uncredited = 0;
    this.recvWindow += n;
    this.#owner.credit(this.id, n, !this.remoteEnded);
  }

  reply(status: number, headers: AnswerHeaders, body?: Buffer | string): void {
    if (this.#closed || this.#headSent) return;
    const data = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body) : body;
    const owner = this.#owner;
    const head = this.#head(status, headers);
    if (head === undefined) return;
    this.#headSent = true;
    const fits =
      data.length <= owner.maxFrameBytes &&
      data.length <= this.sendWindow &&
      data.length <= owner.sendWindow;
    if (data.length === 0 || fits) {
      this.sendWindow -= data.length;
      owner.sendWindow -= data.length;
      owner.write(
        headersFrames(this.id, head, true, owner.maxFrameBytes, data.length > 0 ? data : undefined),
      );
      this.#ended();
      return;
    }
    owner.write(headersFrames(this.id, head, false, owner.maxFrameBytes));
    this.#send(data, true, undefined);
  }

  replyHead(status: number, headers: AnswerHeaders): Writable {
    if (this.#out !== undefined) return this.#out;
    const out = new Writable({
      write: (chunk: Buffer, _enc, done) => this.#send(chunk, false, done),
      final: (done) => this.#send(EMPTY, true, done),
      destroy: (err, done) => {
        if (!this.#localEnded) this.destroy();
        done(err);
      },
    });
    out.on('error', ignore);
    this.#out = out;
    if (this.#closed || this.#headSent) return out;
    const head = this.#head(status, headers);
    if (head === undefined) return out;
    this.#headSent = true;
    this.#owner.write(headersFrames(this.id, head, false, this.#owner.maxFrameBytes));
    return out;
  }

  /** The encoded head, or undefined (and the stream reset) for headers HTTP/2 cannot carry. */
  #head(status: number, headers: AnswerHeaders): Buffer | undefined {
    this.status = status;
    try {
      return encodeResponseHead(status, headers);
    } catch {
      this.reset(ErrorCode.INTERNAL_ERROR);
      return undefined;
    }
  }

  #send(data: Buffer, end: boolean, done: (() => void) | undefined): void {
    if (this.#closed) {
      done?.();
      return;
    }
    this.#pending.push({ data, end, done });
    this.flush();
  }

  /** Sends what the windows allow of the pending DATA. */
  flush(): void {
    const owner = this.#owner;
    const pending = this.#pending;
    while (pending.length > 0 && !this.#closed) {
      const item = pending[0]!;
      const room = Math.min(this.sendWindow, owner.sendWindow, owner.maxFrameBytes);
      if (item.data.length > 0 && room <= 0) {
        if (owner.sendWindow <= 0) owner.waitForWindow(this);
        return;
      }
      const n = Math.min(item.data.length, room);
      const last = n === item.data.length;
      owner.write(dataFrame(this.id, item.data.subarray(0, n), last && item.end));
      this.sendWindow -= n;
      owner.sendWindow -= n;
      if (!last) {
        item.data = item.data.subarray(n);
        continue;
      }
      pending.shift();
      if (item.end) this.#ended();
      if (item.done !== undefined) owner.whenDrained(item.done);
    }
  }

  /** The answer is out whole (END_STREAM sent). */
  #ended(): void {
    this.#localEnded = true;
    if (this.remoteEnded) return this.#close(-1);
    // The answer does not need the rest of the request (RFC 9113 §8.1).
    this.reset(ErrorCode.NO_ERROR);
  }

  /** Resets the stream from this side (RST_STREAM with `code`) and closes it. */
  reset(code: number): void {
    if (this.#closed) return;
    this.#owner.write(u32Frame(FrameType.RST_STREAM, this.id, code));
    this.#resetByUs = true;
    this.#close(code);
  }

  /** The peer reset the stream, or the connection is gone: closes it. */
  aborted(code: number): void {
    this.#close(code);
  }

  #close(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resetCode = code;
    const peerMaySend = this.#resetByUs && !this.remoteEnded;
    this.remoteEnded = true;
    // What was received and never read gives its share of the connection's window back.
    let held = this.#uncredited;
    if (this.#early !== undefined) for (const piece of this.#early) held += piece.length;
    this.#early = undefined;
    this.#uncredited = 0;
    if (held > 0) this.#owner.credit(this.id, held, false);
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) p.done?.();
    if (code > 0 && this.#body !== undefined && !this.#body.readableEnded)
      this.#body.destroy(new StreamResetError(`stream closed with code ${code}`));
    if (code > 0 && this.#out !== undefined && !this.#out.destroyed) this.#out.destroy();
    this.#owner.closed(this, peerMaySend);
    const listeners = this.#onClose;
    this.#onClose = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
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
    this.reset(ErrorCode.INTERNAL_ERROR);
  }
}

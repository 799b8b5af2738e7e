/**
 * Reads an HTTP/1.1 response off a sandbox connection as its bytes arrive:
 * the head, then the body by its framing (RFC 9112 §6.3: none for HEAD,
 * 1xx, 204 and 304; chunked; content-length; or until the connection
 * closes), handing each piece to a sink as it is read. Informational
 * answers (100, 103) are skipped. Whatever is not a well-formed response
 * throws a ProtocolError; the connection is then unusable.
 */

export interface ResponseSink {
  /**
   * The final answer's head: `raw` holds each header's name (lower case)
   * followed by its value; `length` is the body's, or -1 when not known ahead.
   */
  head(status: number, raw: string[], length: number): void;
  data(chunk: Buffer): void;
  end(): void;
}

export class ProtocolError extends Error {}

/** Longest head (status line and headers) a sandbox may send. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line or trailer line. */
const MAX_LINE_BYTES = 4096;
const CRLF = Buffer.from('\r\n');
const CRLFCRLF = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: |\r|$)/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_SIZE = /^[0-9A-Fa-f]{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|,)\s*timeout\s*=\s*(\d+)/i;
/** `Connection` values holding `close` or `keep-alive` (tested without splitting the list per answer). */
const CLOSE = /(?:^|,)\s*close\s*(?=,|$)/i;
const KEEP_ALIVE = /(?:^|,)\s*keep-alive\s*(?=,|$)/i;

const enum State {
  Head,
  Fixed,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Done,
}

export class ResponseParser {
  readonly #sink: ResponseSink;
  #state = State.Done;
  #noBody = false;
  /** Bytes of the current fixed-length body or chunk still to come. */
  #remaining = 0;
  /** Bytes read but not yet consumed (an incomplete head or line). */
  #pending: Buffer | undefined;
  #keepAlive = false;
  #keepAliveHintMs: number | undefined;
  #trailing = false;

  constructor(sink: ResponseSink) {
    this.#sink = sink;
  }

  /** Expects a new response, to a HEAD request when `noBody`. */
  expect(noBody: boolean): void {
    this.#state = State.Head;
    this.#noBody = noBody;
    this.#pending = undefined;
    this.#keepAlive = false;
    this.#keepAliveHintMs = undefined;
    this.#trailing = false;
  }

  /** Whether the response (if any) was read in full. */
  get done(): boolean {
    return this.#state === State.Done;
  }

  /** Whether the response began to arrive. */
  get started(): boolean {
    return this.#state !== State.Head || this.#pending !== undefined;
  }

  /** Whether the connection may carry another request once this response is done. */
  get reusable(): boolean {
    return this.#keepAlive && !this.#trailing;
  }

  /** How long the sandbox keeps an idle connection (`Keep-Alive: timeout=N`), if it said. */
  get keepAliveHintMs(): number | undefined {
    return this.#keepAliveHintMs;
  }

  feed(input: Buffer): void {
    let b = input;
    if (this.#pending !== undefined) {
      b = Buffer.concat([this.#pending, input]);
      this.#pending = undefined;
    }
    let i = 0;
    while (i < b.length) {
      switch (this.#state) {
        case State.Head: {
          const end = b.indexOf(CRLFCRLF, i);
          if (end < 0) return this.#keep(b, i, MAX_HEAD_BYTES, 'response head');
          if (end - i > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
          this.#head(b.toString('latin1', i, end));
          i = end + 4;
          break;
        }
        case State.Fixed:
        case State.ChunkData: {
          const n = Math.min(this.#remaining, b.length - i);
          this.#sink.data(i === 0 && n === b.length ? b : b.subarray(i, i + n));
          i += n;
          this.#remaining -= n;
          if (this.#remaining === 0)
            if (this.#state === State.Fixed) this.#finish();
            else this.#state = State.ChunkEnd;
          break;
        }
        case State.UntilClose:
          this.#sink.data(i === 0 ? b : b.subarray(i));
          i = b.length;
          break;
        case State.ChunkEnd:
          if (b.length - i < 2) return this.#keep(b, i, 2, 'chunk');
          if (b[i] !== 13 || b[i + 1] !== 10) throw new ProtocolError('malformed chunk');
          i += 2;
          this.#state = State.ChunkSize;
          break;
        case State.ChunkSize:
        case State.Trailers: {
          const eol = b.indexOf(CRLF, i);
          if (eol < 0) return this.#keep(b, i, MAX_LINE_BYTES, 'chunk line');
          const line = b.toString('latin1', i, eol);
          i = eol + 2;
          if (this.#state === State.Trailers) {
            if (line === '') this.#finish();
            continue;
          }
          const size = line.split(';', 1)[0]!.trim();
          if (!CHUNK_SIZE.test(size)) throw new ProtocolError('malformed chunk size');
          this.#remaining = parseInt(size, 16);
          this.#state = this.#remaining === 0 ? State.Trailers : State.ChunkData;
          break;
        }
        case State.Done:
          // Bytes after the response: the connection is out of step.
          this.#trailing = true;
          return;
      }
    }
  }

  /** The connection closed: ends a body that runs until then; a ProtocolError if the response was cut short. */
  closed(): void {
    if (this.#state === State.UntilClose) return this.#finish();
    if (this.#state !== State.Done) throw new ProtocolError('the sandbox closed the connection');
  }

  #keep(b: Buffer, from: number, limit: number, what: string): void {
    if (b.length - from > limit) throw new ProtocolError(`${what} too large`);
    this.#pending = from === 0 ? b : b.subarray(from);
  }

  #head(text: string): void {
    const m = STATUS_LINE.exec(text);
    if (m === null) throw new ProtocolError('malformed status line');
    const status = Number(m[2]);
    // Names lower-cased, each beside its value, in order (no object per answer: the proxy builds its own).
    const raw: string[] = [];
    let length: string | undefined;
    let te: string | undefined;
    let connection = '';
    let keepAlive = '';
    for (let eol = text.indexOf('\r\n'); eol >= 0;) {
      const from = eol + 2;
      eol = text.indexOf('\r\n', from);
      const to = eol < 0 ? text.length : eol;
      const colon = text.indexOf(':', from);
      if (colon <= from || colon > to) throw new ProtocolError('malformed header line');
      const name = text.slice(from, colon);
      if (!TOKEN.test(name)) throw new ProtocolError('malformed header line');
      const key = name.toLowerCase();
      const value = text.slice(colon + 1, to).trim();
      raw.push(key, value);
      switch (key) {
        case 'content-length':
          // Repeated lengths are allowed if they agree.
          if (length !== undefined && length !== value) length = '';
          else length = value;
          break;
        case 'transfer-encoding':
          te = te === undefined ? value : `${te},${value}`;
          break;
        case 'connection':
          connection += `,${value}`;
          break;
        case 'keep-alive':
          keepAlive += `,${value}`;
      }
    }
    if (status < 200) {
      if (status === 101) throw new ProtocolError('the sandbox switched protocols');
      return; // informational: the real answer follows
    }
    this.#keepAlive = m[1] === '1' ? !CLOSE.test(connection) : KEEP_ALIVE.test(connection);
    const hint = keepAlive === '' ? null : KEEP_ALIVE_TIMEOUT.exec(keepAlive);
    if (hint !== null) this.#keepAliveHintMs = Number(hint[1]) * 1000;
    const bodyLength = this.#framing(status, length, te);
    this.#sink.head(status, raw, bodyLength);
    if (this.#state === State.Done) this.#sink.end();
  }

  /** Sets how the body is read; returns its length, or -1 when it is not known ahead. */
  #framing(status: number, length: string | undefined, te: string | undefined): number {
    if (this.#noBody || status === 204 || status === 304) {
      this.#state = State.Done;
      return 0;
    }
    if (te !== undefined) {
      // A length beside a transfer coding is not to be trusted for what follows.
      if (length !== undefined) this.#keepAlive = false;
      const codings = headerTokens(te);
      if (codings[codings.length - 1] === 'chunked') this.#state = State.ChunkSize;
      else this.#untilClose();
      return -1;
    }
    if (length === undefined) {
      this.#untilClose();
      return -1;
    }
    if (!/^\d{1,15}$/.test(length)) throw new ProtocolError('malformed content-length');
    this.#remaining = Number(length);
    this.#state = this.#remaining === 0 ? State.Done : State.Fixed;
    return this.#remaining;
  }

  #untilClose(): void {
    this.#state = State.UntilClose;
    this.#keepAlive = false;
  }

  #finish(): void {
    this.#state = State.Done;
    this.#sink.end();
  }
}

/** A header's comma-separated values, lower-cased. */
export function headerTokens(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

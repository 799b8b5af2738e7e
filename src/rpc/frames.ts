/**
 * The internal RPC's wire format: one TCP connection per peer pair, each
 * message one line of JSON (UTF-8) ended by `\n`. JSON never holds a raw
 * newline (JSON.stringify escapes it), so a line is a message. Calls are
 * multiplexed by `id`, chosen by the caller and unique per connection.
 *
 *   caller -> server   {"id":7,"path":"/worker/createSandboxes","meta":{...},"deadlineMs":5000,"body":{...}}
 *                      {"id":7,"cancel":true}            the caller gave up: abort the handler
 *   server -> caller   {"id":7,"ok":{...}}               a unary call's answer
 *                      {"id":7,"item":{...}}             one item of a streaming call
 *                      {"id":7,"end":true}               a streaming call finished
 *                      {"id":7,"error":{"code":"BATON_ERR_...","message":"..."}}
 *                      {"id":0,"error":{...}}            the connection is refused (bad frame), then closed
 *
 * Why not HTTP/2 (what this replaced): per call, Node's HTTP/2 client and
 * server cost several times the CPU of a line of JSON on a socket (measured
 * in `npm run bench:rpc`; docs/ARCHITECTURE.md, "Internal RPC").
 */

/** Longest frame either side takes by default (64 Mi characters); a longer one closes its connection. */
export const MAX_FRAME_CHARS = 64 * 1024 * 1024;

/** What a caller sends. */
export interface CallFrame {
  id: number;
  path?: unknown;
  meta?: unknown;
  deadlineMs?: unknown;
  body?: unknown;
  cancel?: unknown;
}

/** What a server answers. */
export interface ReplyFrame {
  id: number;
  ok?: unknown;
  item?: unknown;
  end?: boolean;
  error?: { code?: unknown; message?: unknown };
}

/** One frame as it goes on the wire. */
export function encodeFrame(frame: CallFrame | ReplyFrame): string {
  return `${JSON.stringify(frame)}\n`;
}

/**
 * Splits a socket's text into lines, holding a partial line across chunks
 * (scanning each chunk once). A line longer than `maxChars` is refused with
 * FrameTooLargeError before it is held whole.
 */
export class LineReader {
  readonly #maxChars: number;
  #parts: string[] = [];
  #held = 0;

  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  /** A line has begun and not ended yet. */
  get holding(): boolean {
    return this.#parts.length > 0;
  }

  push(chunk: string, onLine: (line: string) => void): void {
    let start = 0;
    let nl = chunk.indexOf('\n');
    while (nl >= 0) {
      const piece = chunk.slice(start, nl);
      let line = piece;
      if (this.#parts.length > 0) {
        this.#parts.push(piece);
        line = this.#parts.join('');
        this.#parts = [];
        this.#held = 0;
      }
      if (line.length > this.#maxChars) throw new FrameTooLargeError(this.#maxChars);
      onLine(line);
      start = nl + 1;
      nl = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) {
      this.#held += chunk.length - start;
      if (this.#held > this.#maxChars) throw new FrameTooLargeError(this.#maxChars);
      this.#parts.push(start === 0 ? chunk : chunk.slice(start));
    }
  }
}

export class FrameTooLargeError extends Error {
  constructor(maxChars: number) {
    super(`rpc frame over ${maxChars} characters`);
  }
}

/** The parsed line, or undefined when it is not a JSON object with a numeric id. */
export function parseFrame<F extends { id: number }>(line: string): F | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  return typeof (value as { id?: unknown }).id === 'number' ? (value as F) : undefined;
}

/**
 * Forwarding one request to a sandbox and its response back, unchanged but
 * for hop-by-hop headers (and HTTP/2 pseudo-headers, which become `host`).
 * The sandbox is asked over the data plane's own HTTP/1.1 client
 * (`sandbox-pool.ts`), whose handler this is: no response stream, promise
 * chain or AbortSignal per request. A forward can be cut short (the client
 * left, or the execution time-out passed): the upstream request is aborted
 * and the forward rejects with the reason given.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import {
  RequestBodyError,
  type ResponseHandler,
  type SandboxCall,
  type SandboxPool,
} from './sandbox-pool.js';
import { SandboxUnreachableError, errorMessage } from '../shared/errors.js';
import { START_HEADER } from '../shared/http-headers.js';
import type { AnswerHeaders, Exchange } from './exchange.js';
import { headerTokens } from './http1-response.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'http2-settings',
  'host',
  // The data plane's own server answers `100 Continue` to the client; the
  // sandbox gets the body without being asked.
  'expect',
]);

/**
 * The header lines of the request to the sandbox, each ended by CRLF:
 * `host`, then the client's headers in their order, without pseudo-headers
 * and hop-by-hop ones. Written straight from the client's headers: a copy
 * of them was an object per request, walked again to write the head.
 */
export function requestHeaderLines(headers: IncomingHttpHeaders, host: string): string {
  let lines = `host: ${host}\r\n`;
  const named = namedByConnection(headers.connection);
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(key) || named?.includes(key)) continue;
    const v = headers[key];
    if (typeof v === 'string') lines += `${key}: ${v}\r\n`;
    else if (v !== undefined) for (const one of v) lines += `${key}: ${one}\r\n`;
  }
  return lines;
}

/** The answer's headers from the sandbox's (`raw`: names and values in turn), without hop-by-hop ones, and `extra`. */
function responseHeaders(raw: string[], extra: AnswerHeaders): AnswerHeaders {
  const out: AnswerHeaders = {};
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    const v = raw[i + 1]!;
    if (key === 'connection') connection = connection === undefined ? v : `${connection},${v}`;
    if (HOP_BY_HOP.has(key) && key !== 'host') continue;
    const had = out[key];
    if (had === undefined) out[key] = v;
    else if (Array.isArray(had)) had.push(v);
    else out[key] = [String(had), v];
  }
  // Rare: only a Connection header naming more than keep-alive or close gets here.
  const named = namedByConnection(connection);
  if (named !== undefined) for (const name of named) delete out[name];
  for (const key in extra) out[key] = extra[key]!;
  return out;
}

/**
 * The headers a `Connection` header names: hop-by-hop too (RFC 9110
 * §7.6.1), so not forwarded. Undefined for the usual `keep-alive` or
 * `close`, which name none.
 */
function namedByConnection(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const joined = typeof value === 'string' ? value : value.join(',');
  if (/^\s*(?:keep-alive|close)\s*$/i.test(joined)) return undefined;
  return headerTokens(joined);
}

function saysCold(raw: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2)
    if (raw[i] === START_HEADER && raw[i + 1] === 'cold') return true;
  return false;
}

/** Answers up to this size with a content-length are forwarded in one piece. */
const SMALL_BODY_BYTES = 64 * 1024;

export interface ForwardResult {
  status: number;
}

/** The reason a forward is aborted with when its client went away: there is no one to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client went away');
  }
}

/**
 * The sandbox refused the connection: nothing listens at its address (it
 * died, and the news has not come yet), and the request never left. Safe to
 * send elsewhere when it has no body.
 */
export class SandboxRefusedError extends SandboxUnreachableError {}

export interface Forwarding {
  /** Settles once the answer was written (or the client was gone before it). */
  readonly done: Promise<ForwardResult>;
  /** Cuts the forward short: the upstream request is aborted, `done` rejects with `reason`. Idempotent. */
  abort(reason: Error): void;
}

/**
 * Proxies `ex` to the sandbox behind `pool`. `done` rejects with the abort
 * reason, with SandboxRefusedError or SandboxUnreachableError when no
 * response head came back, and with SandboxUnreachableError when the sandbox
 * broke off its answer (the client is then cut off if the head was sent).
 */
export function forward(
  pool: SandboxPool,
  ex: Exchange,
  path: string,
  host: string,
  sandboxId: string,
  extraHeaders: AnswerHeaders = {},
  /** The sandbox may say it started for this request (Endpoint.reportsColdStart). */
  reportsColdStart = false,
): Forwarding {
  const h = new ForwardHandler(ex, sandboxId, extraHeaders, reportsColdStart);
  h.call = pool.request(
    {
      path,
      method: ex.method,
      headerLines: requestHeaderLines(ex.headers, host),
      sized: ex.headers['content-length'] !== undefined,
      body: ex.hasBody ? ex.body : null,
    },
    h,
  );
  return h;
}

class ForwardHandler implements ResponseHandler, Forwarding {
  readonly done: Promise<ForwardResult>;
  readonly #ex: Exchange;
  readonly #sandboxId: string;
  readonly #extra: AnswerHeaders;
  readonly #reportsColdStart: boolean;
  #resolve!: (r: ForwardResult) => void;
  #reject!: (err: unknown) => void;
  #settled = false;
  /** The request to the sandbox (set once it is made, which is before any answer). */
  call: SandboxCall | undefined;
  #status = 0;
  #headers: AnswerHeaders | undefined;
  /** The small answer's pieces, while it is read whole. */
  #chunks: Buffer[] | undefined;
  /** The client's side once the head went out (a large answer, streamed). */
  #out: Writable | undefined;

  constructor(ex: Exchange, sandboxId: string, extra: AnswerHeaders, reportsColdStart: boolean) {
    this.#ex = ex;
    this.#sandboxId = sandboxId;
    this.#extra = extra;
    this.#reportsColdStart = reportsColdStart;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  abort(reason: Error): void {
    if (this.#settled) return;
    this.#fail(reason);
    this.call?.abort();
  }

  onResponseStart(statusCode: number, raw: string[], length: number): void {
    const ex = this.#ex;
    if (this.#settled || ex.answered || ex.gone) {
      // Nobody to give it to: the sandbox's answer is dropped.
      this.#succeed(statusCode);
      this.call?.abort();
      return;
    }
    this.#status = statusCode;
    const out = responseHeaders(raw, this.#extra);
    // A sandbox that made its isolate for this request says so; the label given here cannot know.
    if (this.#reportsColdStart && saysCold(raw)) out[START_HEADER] = 'cold';
    if (length >= 0 && length <= SMALL_BODY_BYTES) {
      // Small and of known length (the common FaaS answer): read it whole and
      // send head, body and end of stream in one write, so the client wakes
      // once instead of once per piece.
      this.#headers = out;
      this.#chunks = [];
      return;
    }
    const w = ex.replyHead(statusCode, out);
    this.#out = w;
    w.on('drain', () => this.call?.resume());
  }

  onResponseData(chunk: Buffer): boolean {
    if (this.#settled) return true;
    if (this.#chunks !== undefined) this.#chunks.push(chunk);
    else if (this.#out !== undefined) return this.#out.write(chunk);
    return true;
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    const chunks = this.#chunks;
    if (chunks !== undefined)
      this.#ex.reply(
        this.#status,
        this.#headers!,
        chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
      );
    else this.#out?.end();
    this.#succeed(this.#status);
  }

  onResponseError(err: Error): void {
    if (this.#settled) return;
    // The client broke off its own request: it is gone, the sandbox did nothing wrong.
    if (err instanceof RequestBodyError) return this.#fail(new ClientGoneError());
    if (this.#status === 0) {
      const Err =
        (err as { code?: unknown }).code === 'ECONNREFUSED'
          ? SandboxRefusedError
          : SandboxUnreachableError;
      return this.#fail(
        new Err(`sandbox ${this.#sandboxId} did not answer: ${errorMessage(err)}`, {
          cause: err,
        }),
      );
    }
    // The head is out: the answer cannot be repaired, only cut off.
    if (this.#out !== undefined && !this.#ex.gone) this.#ex.destroy();
    this.#fail(
      new SandboxUnreachableError(
        `sandbox ${this.#sandboxId} broke off its answer: ${errorMessage(err)}`,
        { cause: err },
      ),
    );
  }

  #succeed(status: number): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve({ status });
  }

  #fail(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(err);
  }
}

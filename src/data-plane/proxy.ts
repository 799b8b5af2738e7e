/**
 * Forwarding one request to a sandbox and its response back, unchanged but
 * for hop-by-hop headers (and HTTP/2 pseudo-headers, which become `host`).
 * Built on undici's dispatch handler, not `request()`: no response stream,
 * promise chain or AbortSignal per request (together a third of the data
 * plane's CPU per warm request, docs/benchmarks.md). A forward can be cut
 * short (the client left, or the execution time-out passed): the upstream
 * request is aborted and the forward rejects with the reason given.
 */
import type { Dispatcher, Pool } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import { SandboxUnreachableError, errorMessage } from '../shared/errors.js';
import { START_HEADER } from '../shared/http-headers.js';
import type { AnswerHeaders, Exchange } from './exchange.js';

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
  // sandbox gets the body without being asked (undici refuses to send it).
  'expect',
]);

export function requestHeaders(
  headers: IncomingHttpHeaders,
  host: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { host };
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(key)) continue;
    const v = headers[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders, extra: AnswerHeaders): AnswerHeaders {
  const out: AnswerHeaders = {};
  for (const key in headers) {
    if (HOP_BY_HOP.has(key) && key !== 'host') continue;
    const v = headers[key];
    if (v !== undefined) out[key] = v;
  }
  for (const key in extra) out[key] = extra[key]!;
  return out;
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
  pool: Pool,
  ex: Exchange,
  path: string,
  host: string,
  sandboxId: string,
  extraHeaders: AnswerHeaders = {},
  /** The sandbox may say it started for this request (Endpoint.reportsColdStart). */
  reportsColdStart = false,
): Forwarding {
  const h = new ForwardHandler(ex, sandboxId, extraHeaders, reportsColdStart);
  pool.dispatch(
    {
      path,
      method: ex.method,
      headers: requestHeaders(ex.headers, host),
      body: ex.hasBody ? ex.body : null,
    },
    h,
  );
  return h;
}

class ForwardHandler implements Dispatcher.DispatchHandler, Forwarding {
  readonly done: Promise<ForwardResult>;
  readonly #ex: Exchange;
  readonly #sandboxId: string;
  readonly #extra: AnswerHeaders;
  readonly #reportsColdStart: boolean;
  #resolve!: (r: ForwardResult) => void;
  #reject!: (err: unknown) => void;
  #settled = false;
  #controller: Dispatcher.DispatchController | undefined;
  /** Why it was cut short before undici handed over its controller. */
  #abortedWith: Error | undefined;
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
    if (this.#controller === undefined) this.#abortedWith = reason;
    else this.#controller.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#abortedWith !== undefined) controller.abort(this.#abortedWith);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return;
    const ex = this.#ex;
    if (this.#settled || ex.answered || ex.gone) {
      // Nobody to give it to: the sandbox's answer is dropped.
      this.#succeed(statusCode);
      controller.abort(new SandboxUnreachableError('the client went away'));
      return;
    }
    this.#status = statusCode;
    const out = responseHeaders(headers, this.#extra);
    // A sandbox that made its isolate for this request says so; the label given here cannot know.
    if (this.#reportsColdStart && headers[START_HEADER] === 'cold') out[START_HEADER] = 'cold';
    if (Number(headers['content-length']) <= SMALL_BODY_BYTES) {
      // Small and of known length (the common FaaS answer): read it whole and
      // send head, body and end of stream in one write, so the client wakes
      // once instead of once per piece.
      this.#headers = out;
      this.#chunks = [];
      return;
    }
    const w = ex.replyHead(statusCode, out);
    this.#out = w;
    w.on('drain', () => controller.resume());
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#settled) return;
    if (this.#chunks !== undefined) this.#chunks.push(chunk);
    else if (this.#out !== undefined && !this.#out.write(chunk)) controller.pause();
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

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    if (this.#settled) return;
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

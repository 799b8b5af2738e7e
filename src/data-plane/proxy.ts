/**
 * Forwarding one request to a sandbox and its response back, unchanged but
 * for hop-by-hop headers (and HTTP/2 pseudo-headers, which become `host`).
 * The caller's signal cuts a forward short (the client left, or the
 * execution time-out passed): the upstream request is aborted and the
 * signal's reason is what the forward rejects with.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher, Pool } from 'undici';
import { SandboxUnreachableError, errorMessage } from '../shared/errors.js';
import { START_HEADER, declaresBody } from '../shared/http-headers.js';
import type { AnyRequest, AnyResponse } from './listener.js';

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

export function requestHeaders(req: AnyRequest, host: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = { host };
  const h = req.headers;
  for (const key in h) {
    if (key.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(key)) continue;
    const v = h[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function responseHeaders(
  headers: Dispatcher.ResponseData['headers'],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const key in headers) {
    if (HOP_BY_HOP.has(key) && key !== 'host') continue;
    const v = headers[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** Whether the request carries a body that must be forwarded. */
export function hasBody(req: AnyRequest): boolean {
  return 'stream' in req ? !req.stream.endAfterHeaders : declaresBody(req.headers);
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

const ignore = (): void => undefined;

/**
 * The sandbox refused the connection: nothing listens at its address (it
 * died, and the news has not come yet), and the request never left. Safe to
 * send elsewhere when it has no body.
 */
export class SandboxRefusedError extends SandboxUnreachableError {}

/**
 * Proxies and resolves once the response was written. Rejects with
 * `signal.reason` once the signal is aborted, with SandboxRefusedError or
 * SandboxUnreachableError when no response head came back, and with
 * SandboxUnreachableError when the sandbox broke off its answer (the client
 * connection is then closed if the head was already sent).
 */
export async function forward(
  pool: Pool,
  req: AnyRequest,
  res: AnyResponse,
  path: string,
  host: string,
  sandboxId: string,
  signal: AbortSignal,
  extraHeaders: Record<string, string> = {},
  /** The sandbox may say it started for this request (Endpoint.reportsColdStart). */
  reportsColdStart = false,
): Promise<ForwardResult> {
  let upstream: Dispatcher.ResponseData;
  try {
    upstream = await pool.request({
      path,
      method: req.method ?? 'GET',
      headers: requestHeaders(req, host),
      body: hasBody(req) ? (req as Readable) : null,
      signal,
    });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const Err =
      (err as { code?: unknown }).code === 'ECONNREFUSED'
        ? SandboxRefusedError
        : SandboxUnreachableError;
    throw new Err(`sandbox ${sandboxId} did not answer: ${errorMessage(err)}`, { cause: err });
  }
  // Whoever reads the body sees its errors; this keeps one nobody reads (any
  // more) from being thrown as uncaught when it is destroyed.
  upstream.body.on('error', ignore);
  if (signal.aborted || res.headersSent || isGone(res)) {
    upstream.body.destroy();
    if (signal.aborted) throw signal.reason;
    return { status: upstream.statusCode };
  }
  const headers = { ...responseHeaders(upstream.headers), ...extraHeaders };
  // A sandbox that made its isolate for this request says so; the label given here cannot know.
  if (reportsColdStart && upstream.headers[START_HEADER] === 'cold') headers[START_HEADER] = 'cold';
  const length = Number(upstream.headers['content-length']);
  if (length <= SMALL_BODY_BYTES) {
    // Small and of known length (the common FaaS answer): read it whole and
    // send head, body and end of stream in one write, so the client wakes
    // once instead of once per piece.
    let body: Buffer;
    try {
      body = Buffer.from(await upstream.body.arrayBuffer());
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new SandboxUnreachableError(
        `sandbox ${sandboxId} broke off its answer: ${errorMessage(err)}`,
        { cause: err },
      );
    }
    if (!isGone(res)) res.writeHead(upstream.statusCode, headers).end(body);
    return { status: upstream.statusCode };
  }
  res.writeHead(upstream.statusCode, headers);
  try {
    await pipeline(upstream.body, res as NodeJS.WritableStream);
  } catch (err) {
    // The head is out: the response cannot be repaired, only cut off.
    if (!isGone(res)) (res as { destroy?: () => void }).destroy?.();
    if (signal.aborted) throw signal.reason;
    throw new SandboxUnreachableError(
      `sandbox ${sandboxId} broke off its answer: ${errorMessage(err)}`,
      { cause: err },
    );
  }
  return { status: upstream.statusCode };
}

export function isGone(res: AnyResponse): boolean {
  return 'stream' in res ? res.stream.destroyed : res.destroyed;
}

/**
 * How an asynchronous invocation leaves the control plane: an attempt sent
 * through a data plane's proxy as a client's request would be (by the
 * function's name, so a traffic split applies; its answer read back, bounded),
 * the final record POSTed to a callback URL, and the record as the API shows
 * it.
 */
import { request } from 'undici';
import { errorMessage } from '../shared/errors.js';
import { flatHeaders } from '../shared/http-headers.js';
import type { FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord } from '../shared/cluster-objects.js';
import {
  ASYNC_HEADER,
  CALLBACK_HEADER,
  DIRIGENT_ASYNC_HEADER,
  INVOCATION_ID_HEADER,
  MAX_ASYNC_BODY_BYTES,
  type AsyncInvocation,
} from '../shared/async-invocation.js';

/** Baton errors after which another attempt cannot help: the function is gone. */
const FINAL_CODES = new Set(['BATON_ERR_FUNCTION_NOT_FOUND', 'BATON_ERR_FUNCTION_DRAINING']);
/** Headers not passed on to the function. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  ASYNC_HEADER,
  DIRIGENT_ASYNC_HEADER,
  CALLBACK_HEADER,
]);

/** What one attempt gave: the function's answer, or why there was none (`final`: no retry helps). */
export type Outcome =
  { response: NonNullable<AsyncInvocation['response']> } | { error: string; final: boolean };

export async function sendThroughDataPlane(
  dp: DataPlaneRecord,
  r: AsyncInvocation,
  spec: FunctionSpec | undefined,
): Promise<Outcome> {
  const waitMs = (spec?.timeoutMs ?? 300_000) + (spec?.coldStartTimeoutMs ?? 60_000) + 5_000;
  const headers: Record<string, string> = { [INVOCATION_ID_HEADER]: r.id };
  for (const [k, v] of Object.entries(r.request.headers))
    if (!HOP_BY_HOP.has(k.toLowerCase())) headers[k] = v;
  headers.host = r.function;
  const body = Buffer.from(r.request.bodyBase64, 'base64');
  try {
    const res = await request(`http://${dp.host}:${dp.proxyPort}${r.request.path}`, {
      method: r.request.method as 'POST',
      headers,
      ...(body.length > 0 ? { body } : {}),
      headersTimeout: waitMs,
      bodyTimeout: waitMs,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size <= MAX_ASYNC_BODY_BYTES) chunks.push(chunk as Buffer);
    }
    const out = flatHeaders(res.headers);
    const text = Buffer.concat(chunks);
    const code = out['x-baton-error'];
    if (code === undefined)
      return {
        response: { status: res.statusCode, headers: out, bodyBase64: text.toString('base64') },
      };
    return { error: `${code}: ${text.toString('utf8').trim()}`, final: FINAL_CODES.has(code) };
  } catch (err) {
    return { error: `data plane ${dp.id}: ${errorMessage(err)}`, final: false };
  }
}

/** POSTs `value` as JSON: three tries, best effort; whether it was taken. */
export async function postCallback(url: string, value: unknown): Promise<boolean> {
  const body = JSON.stringify(value);
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      await res.body.dump();
      if (res.statusCode < 500) return true;
    } catch {
      // Tried again below.
    }
    if (attempt < 3) await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
  }
  return false;
}

/** An invocation as the API shows it: times as ISO strings, the request's body left out. */
export function invocationView(r: AsyncInvocation) {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    id: r.id,
    function: r.function,
    state: r.state,
    attempts: r.attempts,
    request: { method: r.request.method, path: r.request.path },
    acceptedAt: iso(r.acceptedAt),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    status: r.response?.status ?? null,
    headers: r.response?.headers ?? null,
    bodyBase64: r.response?.bodyBase64 ?? null,
    error: r.error ?? null,
  };
}

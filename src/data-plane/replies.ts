/** The data plane's own answers: errors as one-line text with their code in `x-baton-error`. */
import { BatonError, UnavailableError, errorMessage } from '../shared/errors.js';
import type { AnyResponse } from './listener.js';
import { isGone } from './proxy.js';

/** Answers with the error's status, code and one-line reason; retryable 503s say when to retry. */
export function sendError(res: AnyResponse, err: unknown): void {
  if (res.headersSent || isGone(res)) return;
  const e = err instanceof BatonError ? err : new BatonError(errorMessage(err));
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'x-baton-error': e.code,
  };
  if (e instanceof UnavailableError) headers['retry-after'] = '1';
  res.writeHead(e.httpStatus, headers);
  res.end(`${e.message}\n`);
}

export function sendJson(res: AnyResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

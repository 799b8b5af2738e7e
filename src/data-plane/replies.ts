/** The data plane's own answers: errors as one-line text with their code in `x-baton-error`. */
import { BatonError, errorMessage } from '../shared/errors.js';
import { httpStatusOf } from '../shared/http-status.js';
import type { Exchange } from './exchange.js';

/** Answers with the error's status, code and one-line reason; retryable 503s say when to retry (Retry-After). */
export function sendError(ex: Exchange, err: unknown): void {
  if (ex.answered || ex.gone) return;
  const e = err instanceof BatonError ? err : new BatonError(errorMessage(err));
  const headers: Record<string, string> = {
    'content-type': 'text/plain; charset=utf-8',
    'x-baton-error': e.code,
  };
  const status = httpStatusOf(e);
  if (status === 503 && e.retryable) headers['retry-after'] = '1';
  ex.reply(status, headers, `${e.message}\n`);
}

export function sendJson(ex: Exchange, value: unknown): void {
  ex.reply(200, { 'content-type': 'application/json' }, JSON.stringify(value));
}

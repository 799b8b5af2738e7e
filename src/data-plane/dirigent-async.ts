/**
 * Dirigent's form of asynchronous invocations (docs: dirigent-compat.md),
 * beside Baton's own (`X-Baton-Async: 1`, answered 202 with JSON): a request
 * with `X-Baton-Invocation: async`, or any request to a data plane started
 * with `--async` (Dirigent's async mode), is answered 200 with the
 * invocation's id as the body once it is durable; the read side
 * (`--async-read-port`, 8082) answers a POST or GET whose body (or path) is
 * an id with the function's status and body once the invocation has
 * finished, 204 while it has not. An invocation that failed for good answers
 * 500 with its reason, as Dirigent's "failed many times" does.
 */
import { InvalidArgumentError } from '../shared/errors.js';
import { DIRIGENT_ASYNC_HEADER } from '../shared/async-invocation.js';
import type { Exchange } from './exchange.js';
import { createDualProtocolServer, type DualProtocolServer } from './listener.js';
import { sendError } from './replies.js';

/** Whether the request asks for Dirigent's async answer (or the data plane gives it to all). */
export function isDirigentAsync(ex: Exchange, asyncMode: boolean): boolean {
  return asyncMode || ex.headers[DIRIGENT_ASYNC_HEADER] === 'async';
}

interface InvocationResult {
  state: string;
  status: number | null;
  bodyBase64: string | null;
  error: string | null;
}

/** The read side: answers from the control plane's record of the invocation. */
export function createAsyncReadServer(
  invocation: (id: string) => Promise<unknown>,
): DualProtocolServer {
  return createDualProtocolServer((ex: Exchange) => {
    const chunks: Buffer[] = [];
    const req = ex.body;
    req.on('data', (c: Buffer) => {
      if (chunks.length < 16) chunks.push(c);
    });
    req.once('end', () => {
      const id =
        Buffer.concat(chunks).toString('utf8').trim() ||
        decodeURIComponent(ex.url.slice(1).split('?')[0] ?? '');
      if (id === '')
        return sendError(ex, new InvalidArgumentError('give the invocation id as the body'));
      invocation(id).then(
        (value) => answer(ex, value as InvocationResult),
        (err: unknown) => sendError(ex, err),
      );
    });
  });
}

function answer(ex: Exchange, r: InvocationResult): void {
  if (r.state === 'queued' || r.state === 'running') return ex.reply(204, {});
  if (r.state === 'succeeded' && r.status !== null)
    return ex.reply(
      r.status,
      { 'content-type': 'application/octet-stream' },
      Buffer.from(r.bodyBase64 ?? '', 'base64'),
    );
  ex.reply(
    500,
    { 'content-type': 'text/plain; charset=utf-8' },
    `${r.state}: ${r.error ?? 'failed'}\n`,
  );
}

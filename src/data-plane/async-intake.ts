/**
 * A request marked `X-Baton-Async: 1` is not proxied: its body is read
 * (bounded), it is handed to the control plane, which answers once it is
 * durable, and the client gets 202 with `{"id": ...}` and `Location:
 * /v1/invocations/ID` (on the control plane's API). `X-Callback-Url` names
 * where the result is POSTed once final.
 */
import { PayloadTooLargeError } from '../shared/errors.js';
import { ASYNC_HEADER, CALLBACK_HEADER, MAX_ASYNC_BODY_BYTES } from '../shared/async-invocation.js';
import type { Exchange } from './exchange.js';
import { sendError } from './replies.js';
import { flatHeaders } from '../shared/http-headers.js';

export interface AsyncHandOver {
  function: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyBase64: string;
  callbackUrl?: string;
}

export function isAsync(ex: Exchange): boolean {
  return ex.headers[ASYNC_HEADER] === '1';
}

/**
 * Reads the request and hands it over; answers 202 with JSON, or in
 * Dirigent's form (`dirigent`: 200 with the id as the body).
 */
export function takeAsync(
  ex: Exchange,
  fn: string,
  path: string,
  handOver: (input: AsyncHandOver) => Promise<{ id: string }>,
  dirigent = false,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  const req = ex.body;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > MAX_ASYNC_BODY_BYTES) tooLarge = true;
    else chunks.push(c);
  });
  req.once('error', () => undefined);
  req.once('end', () => {
    if (tooLarge)
      return sendError(
        ex,
        new PayloadTooLargeError(
          `an asynchronous invocation's body is at most ${MAX_ASYNC_BODY_BYTES} bytes`,
        ),
      );
    const headers = flatHeaders(ex.headers);
    const callbackUrl = headers[CALLBACK_HEADER];
    handOver({
      function: fn,
      method: ex.method,
      path,
      headers,
      bodyBase64: Buffer.concat(chunks).toString('base64'),
      ...(callbackUrl === undefined ? {} : { callbackUrl }),
    }).then(
      ({ id }) => {
        if (dirigent) return ex.reply(200, { 'content-type': 'text/plain' }, id);
        ex.reply(
          202,
          { 'content-type': 'application/json', location: `/v1/invocations/${id}` },
          JSON.stringify({ id }),
        );
      },
      (err: unknown) => sendError(ex, err),
    );
  });
}

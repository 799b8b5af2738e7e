/**
 * Response headers telling the client how its request was served: `warm`
 * (a free sandbox on arrival), `cold` (the function had no sandbox: it
 * waited for one to be created) or `queued` (every sandbox was busy: it
 * waited for a free or a new one), with the wait in ms. A request answered
 * by a sandbox made for it (every request of isolate-per-request, the first
 * of a standby isolate sandbox) is `cold` however it waited: the worker's
 * answer says so and the data plane keeps it. The trace replayer records
 * them per invocation.
 */
export const START_HEADER = 'x-baton-start';
export const QUEUED_HEADER = 'x-baton-queued-ms';

/** Headers as one string each (repeated ones joined with ", "), HTTP/2 pseudo-headers left out. */
export function flatHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers))
    if (!k.startsWith(':') && v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/**
 * Whether an HTTP/1 request's headers say a body follows (chunked, or a
 * non-zero content-length); without either, it has none to wait for.
 */
export function declaresBody(headers: {
  'transfer-encoding'?: string | undefined;
  'content-length'?: string | undefined;
}): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The HTTP side of an isolate sandbox: each sandbox has its own port and
 * server in the worker process; a request is read whole (bodies up to
 * MAX_ISOLATE_BODY_BYTES; a bodiless one is not waited on), its URL
 * normalised here so the guest takes it without calling back, and the
 * guest's reply written with its length (so the data plane reads it in one
 * piece) and, when an isolate was made for it, `x-baton-start: cold`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { START_HEADER, declaresBody } from '../../../shared/http-headers.js';
import type { GuestReply } from '../../../guest/isolate/reply.js';
import type { GuestRequestArgs } from './guest-instance.js';

/** Largest request body handed to a handler (bodies are buffered). */
export const MAX_ISOLATE_BODY_BYTES = 6 * 1024 * 1024;

/**
 * The request as the guest takes it, or the answer the sandbox gives
 * itself (413 for a body over the limit, 400 for a URL that does not parse).
 */
export async function guestRequest(
  req: IncomingMessage,
  address: string,
): Promise<GuestRequestArgs | { status: number; text: string }> {
  // A bodiless request is not waited on.
  const body = declaresBody(req.headers) ? await readBody(req, MAX_ISOLATE_BODY_BYTES) : NO_BODY;
  if (body === 'too large')
    return { status: 413, text: `request body over ${MAX_ISOLATE_BODY_BYTES} bytes\n` };
  let url: string;
  try {
    url = new URL(`http://${req.headers.host ?? address}${req.url ?? '/'}`).href;
  } catch {
    return {
      status: 400,
      text: `not a valid URL: host ${req.headers.host ?? ''}, path ${req.url ?? ''}\n`,
    };
  }
  const headers: Array<[string, string]> = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(name)) headers.push([name, req.rawHeaders[i + 1]!]);
  }
  return [
    req.method ?? 'GET',
    url,
    headers,
    body.length === 0 && (req.method === 'GET' || req.method === 'HEAD') ? null : body,
  ];
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

const NO_BODY = Buffer.alloc(0);

function readBody(req: IncomingMessage, limit: number): Promise<Buffer | 'too large'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.once('end', () => resolve(size > limit ? 'too large' : Buffer.concat(chunks)));
    req.once('error', () => resolve(Buffer.concat(chunks)));
  });
}

/** `cold`: an isolate was made for this request; the answer says so (the data plane cannot know). */
export function writeReply(res: ServerResponse, out: GuestReply, cold: boolean): void {
  const headers: Record<string, string | string[]> = {};
  if (cold) headers[START_HEADER] = 'cold';
  for (const [k, v] of out.headers) {
    if (k === 'content-length' || k === START_HEADER || HOP_BY_HOP.has(k)) continue;
    if (k === 'set-cookie') ((headers[k] ??= []) as string[]).push(v);
    else headers[k] = v;
  }
  // The body is whole: its length lets the data plane take it in one read
  // (without it Node would send it chunked).
  if (out.status !== 204 && out.status !== 304 && out.status >= 200)
    headers['content-length'] = String(out.body?.byteLength ?? 0);
  res.writeHead(out.status, out.statusText, headers);
  res.end(out.body === null ? undefined : out.body);
}

export function reply(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
}

/**
 * An HTTP server that answers with a built-in workload. A process sandbox
 * runs one for its function; the simulated runtime runs one per worker for
 * all its sandboxes and resolves the function from the Host header.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { runWorkload, type WorkloadContext } from './workload.js';

export type ContextResolver = (req: IncomingMessage) => WorkloadContext | undefined;

export function createWorkloadServer(resolve: ContextResolver): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    // Bodies are not used by the built-in workloads; read them so keep-alive works.
    req.resume();
    req.once('end', () => void answer(req, res, resolve));
  });
  server.headersTimeout = 66_000;
  return server;
}

async function answer(
  req: IncomingMessage,
  res: ServerResponse,
  resolve: ContextResolver,
): Promise<void> {
  if (req.url === '/health' || req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('OK\n');
    return;
  }
  const ctx = resolve(req);
  if (ctx === undefined) {
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end(`no sandbox here for host "${req.headers.host ?? ''}"\n`);
    return;
  }
  try {
    const reply = await runWorkload(ctx, (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    });
    res.writeHead(reply.status, { 'content-type': reply.contentType }).end(reply.body);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`workload failed: ${String(err)}\n`);
  }
}

/** Function name from the Host header (port stripped, lowercased). */
export function hostFunctionName(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  const colon = host.lastIndexOf(':');
  return (colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host).toLowerCase();
}

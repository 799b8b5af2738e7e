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
    send(res, 200, 'text/plain', 'OK\n');
    return;
  }
  const ctx = resolve(req);
  if (ctx === undefined) {
    send(res, 404, 'text/plain', `no sandbox here for host "${req.headers.host ?? ''}"\n`);
    return;
  }
  try {
    const reply = await runWorkload(ctx, (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    });
    send(res, reply.status, reply.contentType, reply.body);
  } catch (err) {
    send(res, 500, 'text/plain', `workload failed: ${String(err)}\n`);
  }
}

/**
 * With its length: the data plane reads a small answer of known length whole
 * and sends it in one write (Node sends a body chunked when writeHead had no
 * length, and the client then woke once per piece).
 */
function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res
    .writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
    })
    .end(body);
}

/** Function name from the Host header (port stripped, lowercased). */
export function hostFunctionName(req: IncomingMessage): string {
  const host = req.headers.host ?? '';
  const colon = host.lastIndexOf(':');
  return (colon > 0 && !host.endsWith(']') ? host.slice(0, colon) : host).toLowerCase();
}

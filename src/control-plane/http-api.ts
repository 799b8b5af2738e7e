/**
 * The control plane's HTTP surface (default port 9091): Dirigent's form
 * registration (`POST /registerService` or `/`), Baton's JSON API under
 * `/v1` (functions, secrets, status), `/health`, Prometheus `/metrics` and the dashboard at `/ui`. Errors are one line: text for the form
 * API (what Dirigent clients read), `{code, message}` JSON under /v1.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import {
  InvalidArgumentError,
  MethodNotAllowedError,
  NotFoundError,
  NotLeaderError,
  PayloadTooLargeError,
  errorCode,
  errorMessage,
} from '../shared/errors.js';
import { httpStatusOf } from '../shared/http-status.js';
import { compileFunctionSpec } from '../shared/function-spec.js';
import { formOf, specFromForm } from './registration-form.js';
import type { ControlPlane } from './control-plane.js';
import { bearerCheck, type TlsFiles } from '../shared/secrets.js';
import { createServer as createHttpsServer } from 'node:https';
import { sendMetrics } from '../shared/prometheus.js';
import { dashboardPage } from './dashboard.js';
import { invocationView } from './async-invocations.js';

const MAX_BODY_BYTES = 1024 * 1024;
/** The dashboard's page. */
const UI_PATHS = new Set(['/ui', '/ui/']);
/** Served without the API token: health checks, and the dashboard's page (which holds no data; its calls carry the token). */
const OPEN_PATHS = new Set(['/health', ...UI_PATHS]);
/** A registration's reply waits for the data planes; the leader's own bound is under this. */
const FORWARD_TIMEOUT_MS = 30_000;

export interface HttpApi {
  listen(port: number, host: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

/**
 * `apiToken`: when given, every request but OPEN_PATHS must carry
 * `authorization: Bearer TOKEN` (401 BATON_ERR_UNAUTHENTICATED otherwise).
 */
export function createHttpApi(
  cp: ControlPlane,
  logger: Logger,
  apiToken?: string,
  tls?: TlsFiles,
): HttpApi {
  const checkToken =
    apiToken === undefined
      ? undefined
      : bearerCheck(apiToken, {
          missing:
            'this API needs its token: authorization: Bearer TOKEN (the CLI sends $BATON_TOKEN)',
          wrong: "the token is not this API's",
        });
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const routed = (async () => {
      const target = requestTarget(req.url);
      if (checkToken !== undefined && !OPEN_PATHS.has(target.path))
        checkToken(req.headers.authorization);
      await route(cp, target, req, res, logger);
    })();
    routed.catch((err: unknown) => {
      // A client that left mid-request (its body cut off): nobody to answer, nothing failed here.
      if (req.socket.destroyed) return;
      // A follower that cannot reach a leader (an election under way) is not a failure of this one.
      if (httpStatusOf(err) >= 500 && errorCode(err) !== 'BATON_ERR_NOT_LEADER') {
        logger.error({ err: errorMessage(err), url: req.url }, 'request failed');
      }
      const isV1 = (req.url ?? '').startsWith('/v1/');
      if (isV1)
        sendJson(res, httpStatusOf(err), { code: errorCode(err), message: errorMessage(err) });
      else sendText(res, httpStatusOf(err), `${errorMessage(err)}\n`, errorCode(err));
    });
  };
  // HTTPS with --tls-cert-file/--tls-key-file, else plain HTTP.
  const server: Server =
    tls === undefined
      ? createServer({ keepAliveTimeout: 5000 }, handle)
      : createHttpsServer({ keepAliveTimeout: 5000, cert: tls.cert, key: tls.key }, handle);
  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
    },
  };
}

/** An absolute request target's scheme, authority and the path's first slash. */
const ABSOLUTE_START = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*\/?/i;

/**
 * A request's path and query string, as sent (a `new URL` per request for
 * them cost about 3 µs of a registration's 340 on a fresh daemon).
 */
function requestTarget(target = '/'): { path: string; query: string } {
  // The absolute form (`POST http://host/registerService`), which a server must take too.
  const origin = target.startsWith('/') ? target : target.replace(ABSOLUTE_START, '/');
  const end = origin.indexOf('#');
  const t = end < 0 ? origin : origin.slice(0, end);
  const q = t.indexOf('?');
  return q < 0 ? { path: t, query: '' } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

async function route(
  cp: ControlPlane,
  { path, query }: ReturnType<typeof requestTarget>,
  req: IncomingMessage,
  res: ServerResponse,
  logger: Logger,
): Promise<void> {
  const method = req.method ?? 'GET';

  // Each replica's own metrics and the dashboard's page; what the page reads is the leader's.
  if (path === '/metrics') return sendMetrics(res, cp.prometheus.registry, logger);
  if (UI_PATHS.has(path)) return sendDashboard(res);
  const forward = cp.forwardTo;
  if (path === '/health' && forward !== undefined) return sendText(res, 200, 'OK (follower)\n');
  if (forward !== undefined) {
    if ('none' in forward) throw new NotLeaderError(forward.none);
    return forwardToLeader(req, res, forward.registration);
  }
  if (path === '/health') {
    const store = cp.storeStatus;
    if (cp.ready && store.ok) return sendText(res, 200, 'OK\n');
    const why = cp.ready
      ? `the store cannot be used: ${store.error}`
      : 'loading state from the store';
    return sendText(res, 503, `${why}\n`, 'BATON_ERR_STORE');
  }
  if (path === '/v1/metrics') return sendJson(res, 200, cp.metrics());
  if (path === '/v1/prometheus-targets')
    return sendJson(res, 200, cp.prometheusTargets(req.headers.host ?? ''));
  if (path === '/v1/status') {
    if (method !== 'GET') throw new MethodNotAllowedError(`${method} ${path}: use GET`);
    return sendJson(res, 200, await cp.status());
  }
  // Everything else reads or changes functions: not before they are loaded.
  await cp.whenReady();
  if (path === '/registerService' || path === '/') {
    if (method !== 'POST')
      throw new MethodNotAllowedError(`${method} ${path}: registration takes POST`);
    const form = formOf(query, await readBody(req), req.headers['content-type'] ?? '');
    const spec = specFromForm(form);
    await cp.registerFunction(spec);
    return sendText(res, 200, cp.invokeAddresses());
  }

  if (path === '/v1/functions') {
    if (method !== 'GET')
      throw new MethodNotAllowedError(`${method} ${path}: use GET, or PUT /v1/functions/NAME`);
    return sendJson(res, 200, { functions: cp.functions.list() });
  }
  const logs = /^\/v1\/functions\/([^/]+)\/logs$/.exec(path);
  if (logs !== null) {
    if (method !== 'GET') throw new MethodNotAllowedError(`${method} ${path}: use GET`);
    const params = new URLSearchParams(query);
    const sandbox = params.get('sandbox');
    const since = params.get('since');
    const sinceMs = since === null ? undefined : Number(since);
    if (sinceMs !== undefined && !Number.isFinite(sinceMs))
      throw new InvalidArgumentError(`"${since}" is not a time in ms since the epoch`, {
        field: 'since',
      });
    return sendJson(
      res,
      200,
      await cp.functions.logs(decodeURIComponent(logs[1]!), sandbox ?? undefined, sinceMs),
    );
  }
  const rev = /^\/v1\/functions\/([^/]+)\/(revisions|traffic)$/.exec(path);
  if (rev !== null) {
    const name = decodeURIComponent(rev[1]!);
    if (rev[2] === 'revisions') {
      if (method !== 'GET') throw new MethodNotAllowedError(`${method} ${path}: use GET`);
      return sendJson(res, 200, { revisions: cp.revisions.list(name) });
    }
    if (method !== 'PUT') throw new MethodNotAllowedError(`${method} ${path}: use PUT`);
    const input = await readJsonObject(req, '{"split": {"REVISION": PERCENT, ...}}');
    return sendJson(res, 200, { split: await cp.revisions.setTraffic(name, input.split) });
  }
  const m = /^\/v1\/functions\/([^/]+)$/.exec(path);
  if (m !== null) {
    const name = decodeURIComponent(m[1]!);
    switch (method) {
      case 'GET':
        return sendJson(res, 200, { ...cp.functions.get(name), invoke: cp.invokeAddresses() });
      case 'PUT': {
        const input = await readJsonObject(req, 'the function spec');
        const given = (input as { name?: unknown }).name;
        if (given !== undefined && given !== name) {
          throw new InvalidArgumentError(
            `name: ${JSON.stringify(given)} in the body differs from "${name}" in the path`,
          );
        }
        const spec = compileFunctionSpec({ ...input, name });
        const { outcome, revision } = await cp.revisions.deploy(spec);
        return sendJson(res, outcome === 'created' ? 201 : 200, {
          ...cp.functions.get(name),
          invoke: cp.invokeAddresses(),
          outcome,
          revision,
        });
      }
      case 'DELETE': {
        const t = new URLSearchParams(query).get('drain_timeout_ms');
        if (t !== null && !/^\d+$/.test(t))
          throw new InvalidArgumentError(`drain_timeout_ms: "${t}" is not a non-negative integer`);
        const { remaining } = await cp.deleteFunction(name, t === null ? undefined : Number(t));
        return sendJson(res, 200, { deleted: name, drained: remaining === 0, remaining });
      }
      default:
        throw new MethodNotAllowedError(`${method} ${path}: use GET, PUT or DELETE`);
    }
  }
  const inv = /^\/v1\/invocations\/([^/]+)$/.exec(path);
  if (inv !== null) {
    if (method !== 'GET') throw new MethodNotAllowedError(`${method} ${path}: use GET`);
    return sendJson(
      res,
      200,
      invocationView(await cp.invocations.get(decodeURIComponent(inv[1]!))),
    );
  }
  if (path === '/v1/dlq') {
    if (method !== 'GET') throw new MethodNotAllowedError(`${method} ${path}: use GET`);
    return sendJson(res, 200, { invocations: cp.invocations.deadLettered().map(invocationView) });
  }
  const dlq = /^\/v1\/dlq\/([^/]+)(\/retry)?$/.exec(path);
  if (dlq !== null) {
    const id = decodeURIComponent(dlq[1]!);
    if (dlq[2] !== undefined && method === 'POST')
      return sendJson(res, 200, invocationView(await cp.invocations.retry(id)));
    if (dlq[2] === undefined && method === 'DELETE') {
      await cp.invocations.remove(id);
      return sendJson(res, 200, { deleted: id });
    }
    throw new MethodNotAllowedError(
      `${method} ${path}: use POST /v1/dlq/ID/retry or DELETE /v1/dlq/ID`,
    );
  }
  if (path === '/v1/secrets') {
    if (method !== 'GET')
      throw new MethodNotAllowedError(`${method} ${path}: use GET, or PUT /v1/secrets/NAME`);
    return sendJson(res, 200, { secrets: cp.secrets.list() });
  }
  const s = /^\/v1\/secrets\/([^/]+)$/.exec(path);
  if (s !== null) return routeSecret(cp, decodeURIComponent(s[1]!), req, res);
  throw new NotFoundError(`no such endpoint: ${method} ${path}`);
}

/** One secret: set (PUT `{"value": ...}`), shown without its value (GET), deleted. */
async function routeSecret(
  cp: ControlPlane,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  switch (req.method) {
    case 'GET': {
      const info = cp.secrets.info(name);
      if (info === undefined) throw new NotFoundError(`no secret named "${name}"`);
      return sendJson(res, 200, info);
    }
    case 'PUT': {
      const input = await readJsonObject(req, '{"value": "..."}');
      const extra = Object.keys(input).filter((k) => k !== 'value');
      if (extra.length > 0) throw new InvalidArgumentError(`unknown field(s) ${extra.join(', ')}`);
      if (typeof input.value !== 'string')
        throw new InvalidArgumentError('value: must be a string', { field: 'value' });
      const outcome = await cp.secrets.set(name, input.value);
      return sendJson(res, outcome === 'created' ? 201 : 200, cp.secrets.info(name));
    }
    case 'DELETE':
      await cp.secrets.delete(name);
      return sendJson(res, 200, { deleted: name });
    default:
      throw new MethodNotAllowedError(
        `${req.method ?? '?'} /v1/secrets/${name}: use GET, PUT or DELETE`,
      );
  }
}

/** The body as a JSON object; InvalidArgumentError saying what it should be (`what`) otherwise. */
async function readJsonObject(
  req: IncomingMessage,
  what: string,
): Promise<Record<string, unknown>> {
  const body = await readBody(req);
  let input: unknown;
  try {
    input = JSON.parse(body.length === 0 ? '{}' : body);
  } catch {
    throw new InvalidArgumentError('body is not JSON');
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new InvalidArgumentError(`body must be a JSON object (${what})`);
  return input as Record<string, unknown>;
}

/**
 * A follower passes a request on to the leader's HTTP API and its answer
 * back unchanged, so a client that knows one replica's address keeps working.
 */
async function forwardToLeader(
  req: IncomingMessage,
  res: ServerResponse,
  leader: string,
): Promise<void> {
  const method = req.method ?? 'GET';
  const body = method === 'GET' || method === 'HEAD' ? undefined : await readBody(req);
  const headers: Record<string, string> = {};
  for (const name of ['content-type', 'accept', 'authorization'])
    if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
  let answer: Response;
  try {
    answer = await fetch(new URL(req.url ?? '/', leader), {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
    });
  } catch (err) {
    throw new NotLeaderError(`cannot reach the leader at ${leader}: ${errorMessage(err)}`);
  }
  const out: Record<string, string> = {};
  for (const name of ['content-type', 'x-baton-error']) {
    const v = answer.headers.get(name);
    if (v !== null) out[name] = v;
  }
  const text = await answer.text();
  if (!res.headersSent) res.writeHead(answer.status, out).end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        // Answer at once; the rest of the body is read and dropped.
        req.removeAllListeners('data');
        req.resume();
        reject(new PayloadTooLargeError(`body over ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

function sendText(res: ServerResponse, status: number, text: string, code?: string): void {
  const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
  if (code !== undefined) headers['x-baton-error'] = code;
  send(res, status, text, headers);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, JSON.stringify(value), { 'content-type': 'application/json' });
}

/**
 * With its length, an answer leaves in one write: chunked, it took a writev
 * of five pieces (head, chunk size, text, chunk end, last chunk).
 */
function send(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  if (res.headersSent) return;
  res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) }).end(body);
}

function sendDashboard(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
  res.end(dashboardPage());
}

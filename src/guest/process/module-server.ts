/**
 * Serving a user's JS/TS module in a Node process: the module's default
 * export handles a web-standard Request and returns a Response (or a promise
 * of one); `export default { fetch(request) { ... } }` works too. TypeScript
 * modules are loaded through tsx. Used by the module host (one sandbox, one
 * module) and the pool host (specialised on assignment).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

export type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Lets later imports load TypeScript (once per process), wherever the file
 * is: tsx's ESM hooks alone leave a `.ts` file outside a `"type": "module"`
 * package to Node's CommonJS loader, which cannot read it; its CommonJS
 * hooks take those.
 */
export async function registerTypeScript(): Promise<void> {
  tsxRegistered ??= Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')]).then(
    ([esm, cjs]) => {
      esm.register();
      cjs.register();
    },
  );
  return tsxRegistered;
}
let tsxRegistered: Promise<void> | undefined;

export async function loadHandler(path: string): Promise<Handler> {
  if (/\.[mc]?tsx?$/.test(path)) await registerTypeScript();
  const mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  // A module compiled to CommonJS (a TS file outside an ESM package) has its
  // `export default` at `default.default`.
  const outer = mod.default;
  const exported =
    outer !== null &&
    typeof outer === 'object' &&
    'default' in outer &&
    (outer as { __esModule?: unknown }).__esModule === true
      ? outer.default
      : outer;
  if (typeof exported === 'function') return exported as Handler;
  if (
    exported !== null &&
    typeof exported === 'object' &&
    typeof (exported as { fetch?: unknown }).fetch === 'function'
  ) {
    const obj = exported as { fetch: Handler };
    return (request) => obj.fetch(request);
  }
  throw new Error(
    `${path}: the default export must be a function (Request) => Response, or an object with a fetch method`,
  );
}

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  return new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, {
    method: req.method ?? 'GET',
    headers,
    ...(hasBody ? { body: Readable.toWeb(req), duplex: 'half' } : {}),
  });
}

async function send(res: ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') headers[key] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers['set-cookie'] = cookies;
  res.writeHead(response.status, response.statusText, headers);
  if (response.body === null) {
    res.end();
    return;
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
  res.end();
}

/** An HTTP server that answers every request with `handler`. */
export function createHandlerServer(handler: Handler): Server {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
    void (async () => {
      try {
        const response = await handler(toRequest(req));
        if (!(response instanceof Response)) throw new Error('handler did not return a Response');
        await send(res, response);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        process.stderr.write(
          `handler error: ${err instanceof Error ? (err.stack ?? message) : message}\n`,
        );
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`function error: ${message}\n`);
      }
    })();
  });
  return server;
}

/**
 * The web platform a handler sees inside a V8 isolate (the `isolate`
 * runtimes). A bare isolate has only ECMAScript; this adds the subset of the
 * web APIs a `Request -> Response` handler needs, buffered (no streams):
 * Request, Response, Headers, URL, URLSearchParams, TextEncoder, TextDecoder,
 * console, setTimeout/clearTimeout, queueMicrotask, performance.now. What
 * needs the host (the clock, URL parsing, timers, logs) goes through the
 * callbacks the runtime hands to `__baton.boot`, never to the global scope.
 * docs/isolates.md lists what a handler can and cannot do.
 *
 * This file is the entry: it installs the classes of text.ts, url.ts,
 * fetch.ts and timers-console.ts as globals and defines the runtime's entry
 * points (`__baton`). Bundled by esbuild into one script and run in every
 * isolate when it is made, before any function's code is known (the
 * runtime's reserve makes isolates ahead); it runs in the isolate, never in
 * Node. Its top level defines things and runs its own request path once
 * (warmUp); the host's callbacks come later, with the handler, through
 * `__baton.boot`.
 */

import { Body, GuestHeaders, GuestRequest, GuestResponse, NormalizedUrl } from './fetch.js';
import { host, type HandedRequest, type Host } from './host.js';
import type { GuestReply } from './reply.js';
import { clearTimeout, console, fireTimer, setTimeout } from './timers-console.js';
import { GuestTextDecoder, GuestTextEncoder, encoder } from './text.js';
import { GuestURL, GuestURLSearchParams } from './url.js';

Object.defineProperties(globalThis, {
  TextEncoder: { value: GuestTextEncoder, writable: true, configurable: true },
  TextDecoder: { value: GuestTextDecoder, writable: true, configurable: true },
  URL: { value: GuestURL, writable: true, configurable: true },
  URLSearchParams: { value: GuestURLSearchParams, writable: true, configurable: true },
  Headers: { value: GuestHeaders, writable: true, configurable: true },
  Request: { value: GuestRequest, writable: true, configurable: true },
  Response: { value: GuestResponse, writable: true, configurable: true },
  console: { value: console, writable: true, configurable: true },
  setTimeout: { value: setTimeout, writable: true, configurable: true },
  clearTimeout: { value: clearTimeout, writable: true, configurable: true },
  queueMicrotask: {
    value: (fn: () => void) => void Promise.resolve().then(fn),
    writable: true,
    configurable: true,
  },
  performance: {
    value: Object.freeze({ now: () => host.now() }),
    writable: true,
    configurable: true,
  },
});

// ---------------------------------------------------------------- the runtime's entry points

type Handler = (request: GuestRequest, env: Readonly<Record<string, string>>) => unknown;

let handler: Handler | undefined;
let env: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Called once (by boot) after the handler's bundle has run: takes its default export
 * (a function, or an object with a fetch method) and the sandbox's
 * environment. Throws when the export is not a handler.
 */
function init(exports: unknown, environment: Record<string, string>): void {
  const def = (exports as { default?: unknown } | undefined)?.default;
  if (typeof def === 'function') handler = def as Handler;
  else if (
    def !== null &&
    typeof def === 'object' &&
    typeof (def as { fetch?: unknown }).fetch === 'function'
  ) {
    const obj = def as { fetch: Handler };
    handler = (req, e) => obj.fetch(req, e);
  } else
    throw new TypeError(
      'the default export must be a function (Request) => Response, or an object with a fetch method',
    );
  env = Object.freeze({ ...environment });
}

/** A request handed in, answered by the handler. */
function dispatch(
  method: string,
  url: string,
  headers: Array<[string, string]>,
  body: Uint8Array | null,
): Promise<GuestReply> {
  if (handler === undefined) return Promise.reject(new Error('the isolate is not booted'));
  return answer(handler, env, method, url, headers, body);
}

async function answer(
  by: Handler,
  environment: Readonly<Record<string, string>>,
  method: string,
  url: string,
  headers: Array<[string, string]>,
  body: Uint8Array | null,
): Promise<GuestReply> {
  const request = new GuestRequest(new NormalizedUrl(url), { method, headers, body });
  const response = await by(request, environment);
  if (!(response instanceof GuestResponse))
    throw new TypeError(`the handler returned ${describe(response)}, not a Response`);
  return {
    status: response.status,
    statusText: response.statusText,
    headers: [...response.headers],
    body: Body.bytes(response),
  };
}

let booted = false;

/**
 * The runtime's one call that makes an isolate a function's: attaches the
 * host, runs the handler's bundle (`load`, which returns its exports), takes
 * the handler, and answers `request` when one is handed in (a fresh isolate
 * made for a request), so a cold start is a single trip to the isolate's
 * thread. Once per isolate.
 */
function boot(
  now: Host['now'],
  url: Host['url'],
  log: Host['log'],
  timer: Host['timer'],
  cancel: Host['cancel'],
  environment: Record<string, string>,
  load: () => unknown,
  request: HandedRequest | undefined,
): Promise<GuestReply> | undefined {
  if (booted) throw new Error('__baton.boot: this isolate is booted already');
  booted = true;
  Object.assign(host, { now, url, log, timer, cancel });
  init(load(), environment);
  return request === undefined ? undefined : dispatch(...request);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${Object.prototype.toString.call(v)})`;
  return typeof v;
}

Object.defineProperty(globalThis, '__baton', {
  value: Object.freeze({ boot, dispatch, fireTimer }),
  enumerable: false,
});

/**
 * The request path run once, with a handler of the prelude's own, as the
 * isolate is made (before any function's code is known): in a fresh isolate
 * every inline cache of Request, Headers, Response and the reply met its
 * first use on the first request (docs/benchmarks.md has its cost). Needs no host and leaves
 * nothing set (handler, environment, timers).
 */
function warmUp(): void {
  const warm = async (request: GuestRequest): Promise<GuestResponse> => {
    const text = await request.text();
    return request.headers.get('content-type') === 'application/json'
      ? GuestResponse.json({ url: request.url, length: text.length }, { status: 201 })
      : new GuestResponse(`${request.method} ${text}`, {
          headers: { 'content-type': 'text/plain' },
        });
  };
  const url = 'http://localhost/';
  void answer(warm, env, 'GET', url, [['host', 'localhost']], null);
  const json: Array<[string, string]> = [['content-type', 'application/json']];
  void answer(warm, env, 'POST', url, json, encoder.encode('{}'));
}
warmUp();

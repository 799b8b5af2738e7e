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
 * Bundled by esbuild and run in every isolate when it is made, before any
 * function's code is known (the runtime's reserve makes isolates ahead); it
 * runs in the isolate, never in Node. Its top level defines things and runs
 * its own request path once (warmUp); the host's callbacks come later, with
 * the handler, through `__baton.boot`.
 */

import type { GuestReply } from './reply.js';

/** What needs the worker: its clock, URL parsing, logs, timers. */
interface Host {
  now(): number;
  url(input: string, base: string | undefined): string | null;
  log(level: string, line: string): void;
  timer(id: number, ms: number): void;
  cancel(id: number): void;
}

/** A request as the runtime hands it in: method, url (already normalised), headers, body. */
type HandedRequest = [string, string, Array<[string, string]>, Uint8Array | null];

const unattached = (): never => {
  throw new Error('the isolate has no host yet');
};
const host: Host = {
  now: unattached,
  url: unattached,
  log: unattached,
  timer: unattached,
  cancel: unattached,
};

// ---------------------------------------------------------------- text

class GuestTextEncoder {
  readonly encoding = 'utf-8';
  encode(input = ''): Uint8Array {
    const s = String(input);
    const out: number[] = [];
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else
        out.push(
          0xf0 | (c >> 18),
          0x80 | ((c >> 12) & 63),
          0x80 | ((c >> 6) & 63),
          0x80 | (c & 63),
        );
    }
    return new Uint8Array(out);
  }
}

class GuestTextDecoder {
  readonly encoding = 'utf-8';
  decode(input?: ArrayBuffer | ArrayBufferView): string {
    if (input === undefined) return '';
    const b = ArrayBuffer.isView(input)
      ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
      : new Uint8Array(input);
    let out = '';
    const codes: number[] = [];
    for (let i = 0; i < b.length;) {
      const x = b[i++]!;
      let c: number;
      const need = x < 0x80 ? 0 : x >= 0xf0 && x < 0xf5 ? 3 : x >= 0xe0 ? 2 : x >= 0xc2 ? 1 : -1;
      if (need === 0) c = x;
      else if (need < 0 || i + need > b.length) c = 0xfffd;
      else {
        c = x & (0x3f >> need);
        let ok = true;
        for (let k = 0; k < need; k++) {
          const y = b[i + k]!;
          if ((y & 0xc0) !== 0x80) ok = false;
          c = (c << 6) | (y & 63);
        }
        if (ok) i += need;
        else c = 0xfffd;
      }
      if (c > 0xffff) {
        c -= 0x10000;
        codes.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
      } else codes.push(c);
      if (codes.length > 4096) out += String.fromCharCode(...codes.splice(0));
    }
    return out + String.fromCharCode(...codes);
  }
}

const encoder = new GuestTextEncoder();
const decoder = new GuestTextDecoder();

// ---------------------------------------------------------------- URL

class GuestURLSearchParams {
  #list: Array<[string, string]> = [];
  #onChange: (() => void) | undefined;

  constructor(init?: string | Iterable<[string, string]> | Record<string, string>) {
    if (init === undefined || init === null) return;
    if (typeof init === 'string') this.#parse(init);
    else if (typeof (init as Iterable<[string, string]>)[Symbol.iterator] === 'function')
      for (const [k, v] of init as Iterable<[string, string]>)
        this.#list.push([String(k), String(v)]);
    else for (const [k, v] of Object.entries(init)) this.#list.push([k, String(v)]);
  }

  /** @internal the URL that owns these parameters */
  static attach(p: GuestURLSearchParams, search: string, onChange: () => void): void {
    p.#parse(search);
    p.#onChange = onChange;
  }

  #parse(s: string): void {
    this.#list = [];
    for (const part of (s.startsWith('?') ? s.slice(1) : s).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      this.#list.push([formDecode(k), formDecode(v)]);
    }
  }

  get size(): number {
    return this.#list.length;
  }
  append(k: string, v: string): void {
    this.#list.push([String(k), String(v)]);
    this.#onChange?.();
  }
  delete(k: string): void {
    this.#list = this.#list.filter(([n]) => n !== k);
    this.#onChange?.();
  }
  get(k: string): string | null {
    return this.#list.find(([n]) => n === k)?.[1] ?? null;
  }
  getAll(k: string): string[] {
    return this.#list.filter(([n]) => n === k).map(([, v]) => v);
  }
  has(k: string): boolean {
    return this.#list.some(([n]) => n === k);
  }
  set(k: string, v: string): void {
    const i = this.#list.findIndex(([n]) => n === k);
    if (i < 0) this.#list.push([String(k), String(v)]);
    else {
      this.#list[i] = [String(k), String(v)];
      this.#list = this.#list.filter(([n], j) => n !== k || j === i);
    }
    this.#onChange?.();
  }
  sort(): void {
    this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    this.#onChange?.();
  }
  forEach(cb: (value: string, key: string, parent: GuestURLSearchParams) => void): void {
    for (const [k, v] of this.#list) cb(v, k, this);
  }
  keys(): IterableIterator<string> {
    return this.#list.map(([k]) => k)[Symbol.iterator]();
  }
  values(): IterableIterator<string> {
    return this.#list.map(([, v]) => v)[Symbol.iterator]();
  }
  entries(): IterableIterator<[string, string]> {
    return this.#list.map(([k, v]): [string, string] => [k, v])[Symbol.iterator]();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
  toString(): string {
    return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&');
  }
}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

interface UrlParts {
  protocol: string;
  username: string;
  password: string;
  hostname: string;
  port: string;
  pathname: string;
  search: string;
  hash: string;
}

class GuestURL {
  #p: UrlParts;
  readonly searchParams = new GuestURLSearchParams();

  constructor(input: string | GuestURL, base?: string | GuestURL) {
    const parsed = host.url(String(input), base === undefined ? undefined : String(base));
    if (parsed === null) throw new TypeError(`Invalid URL: ${String(input)}`);
    this.#p = JSON.parse(parsed) as UrlParts;
    GuestURLSearchParams.attach(this.searchParams, this.#p.search, () => {
      const q = this.searchParams.toString();
      this.#p.search = q === '' ? '' : `?${q}`;
    });
  }

  static canParse(input: string, base?: string): boolean {
    return host.url(String(input), base === undefined ? undefined : String(base)) !== null;
  }

  get protocol(): string {
    return this.#p.protocol;
  }
  get username(): string {
    return this.#p.username;
  }
  get password(): string {
    return this.#p.password;
  }
  get hostname(): string {
    return this.#p.hostname;
  }
  get port(): string {
    return this.#p.port;
  }
  get host(): string {
    return this.#p.port === '' ? this.#p.hostname : `${this.#p.hostname}:${this.#p.port}`;
  }
  get origin(): string {
    return `${this.#p.protocol}//${this.host}`;
  }
  get pathname(): string {
    return this.#p.pathname;
  }
  get search(): string {
    return this.#p.search;
  }
  get hash(): string {
    return this.#p.hash;
  }
  get href(): string {
    const p = this.#p;
    const auth =
      p.username === '' ? '' : `${p.username}${p.password === '' ? '' : `:${p.password}`}@`;
    return `${p.protocol}//${auth}${this.host}${p.pathname}${p.search}${p.hash}`;
  }
  toString(): string {
    return this.href;
  }
  toJSON(): string {
    return this.href;
  }
}

// ---------------------------------------------------------------- fetch types

type HeadersInit = GuestHeaders | Iterable<[string, string]> | Record<string, string>;

class GuestHeaders {
  readonly #map = new Map<string, string[]>();

  constructor(init?: HeadersInit) {
    if (init === undefined || init === null) return;
    if (init instanceof GuestHeaders) init.forEach((v, k) => this.append(k, v));
    else if (typeof (init as Iterable<[string, string]>)[Symbol.iterator] === 'function')
      for (const [k, v] of init as Iterable<[string, string]>) this.append(k, v);
    else for (const [k, v] of Object.entries(init as Record<string, string>)) this.append(k, v);
  }

  append(name: string, value: string): void {
    const k = headerName(name);
    const list = this.#map.get(k);
    if (list === undefined) this.#map.set(k, [String(value)]);
    else list.push(String(value));
  }
  set(name: string, value: string): void {
    this.#map.set(headerName(name), [String(value)]);
  }
  delete(name: string): void {
    this.#map.delete(headerName(name));
  }
  get(name: string): string | null {
    return this.#map.get(headerName(name))?.join(', ') ?? null;
  }
  getSetCookie(): string[] {
    return [...(this.#map.get('set-cookie') ?? [])];
  }
  has(name: string): boolean {
    return this.#map.has(headerName(name));
  }
  forEach(cb: (value: string, key: string, parent: GuestHeaders) => void): void {
    for (const [k, v] of this.entries()) cb(v, k, this);
  }
  *entries(): IterableIterator<[string, string]> {
    for (const k of [...this.#map.keys()].sort()) {
      const values = this.#map.get(k)!;
      if (k === 'set-cookie') for (const v of values) yield [k, v];
      else yield [k, values.join(', ')];
    }
  }
  *keys(): IterableIterator<string> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): IterableIterator<string> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

function headerName(name: string): string {
  const k = String(name).toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(k)) throw new TypeError(`Invalid header name: "${name}"`);
  return k;
}

type BodyInit = string | ArrayBuffer | ArrayBufferView | GuestURLSearchParams | null | undefined;

/** Body bytes and the content type they imply. */
function extractBody(body: BodyInit): [Uint8Array | null, string | undefined] {
  if (body === null || body === undefined) return [null, undefined];
  if (typeof body === 'string') return [encoder.encode(body), 'text/plain;charset=UTF-8'];
  if (body instanceof GuestURLSearchParams)
    return [encoder.encode(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
  if (body instanceof ArrayBuffer) return [new Uint8Array(body.slice(0)), undefined];
  if (ArrayBuffer.isView(body))
    return [
      new Uint8Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)),
      undefined,
    ];
  throw new TypeError(
    'unsupported body: use a string, ArrayBuffer, typed array or URLSearchParams (no streams in an isolate)',
  );
}

class Body {
  #bytes: Uint8Array | null;
  #used = false;
  readonly headers: GuestHeaders;

  constructor(body: BodyInit, headers: HeadersInit | undefined) {
    this.headers = new GuestHeaders(headers);
    const [bytes, type] = extractBody(body);
    this.#bytes = bytes;
    if (type !== undefined && !this.headers.has('content-type'))
      this.headers.set('content-type', type);
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  #take(): Uint8Array {
    if (this.#used) throw new TypeError('body already read');
    this.#used = true;
    return this.#bytes ?? new Uint8Array(0);
  }

  /** @internal the bytes, for the runtime and for clone() */
  static bytes(b: Body): Uint8Array | null {
    return b.#bytes;
  }

  // async: a body read twice rejects rather than throws.
  // eslint-disable-next-line @typescript-eslint/require-await
  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = this.#take();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  bytes(): Promise<Uint8Array> {
    return this.arrayBuffer().then((b) => new Uint8Array(b));
  }
  // eslint-disable-next-line @typescript-eslint/require-await
  async text(): Promise<string> {
    return decoder.decode(this.#take());
  }
  json(): Promise<unknown> {
    return this.text().then((t) => JSON.parse(t) as unknown);
  }
}

interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit;
}

/** A URL the runtime already normalised (the requests it hands in): not parsed again. */
class NormalizedUrl {
  constructor(readonly href: string) {}
}

class GuestRequest extends Body {
  readonly url: string;
  readonly method: string;

  constructor(input: string | GuestURL | GuestRequest | NormalizedUrl, init: RequestInit = {}) {
    const from = input instanceof GuestRequest ? input : undefined;
    const method = String(init.method ?? from?.method ?? 'GET').toUpperCase();
    const body = init.body ?? (from === undefined ? null : Body.bytes(from));
    if (body !== null && body !== undefined && (method === 'GET' || method === 'HEAD'))
      throw new TypeError(`a ${method} request cannot have a body`);
    super(body, init.headers ?? from?.headers);
    this.method = method;
    this.url =
      from?.url ??
      (input instanceof NormalizedUrl ? input.href : new GuestURL(input as string | GuestURL).href);
  }

  clone(): GuestRequest {
    return new GuestRequest(this);
  }
}

interface ResponseInit {
  status?: number;
  statusText?: string;
  headers?: HeadersInit;
}

class GuestResponse extends Body {
  readonly status: number;
  readonly statusText: string;
  readonly type = 'default';
  readonly redirected = false;
  readonly url = '';

  constructor(body?: BodyInit, init: ResponseInit = {}) {
    super(body, init.headers);
    const status = init.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599)
      throw new RangeError(`Response status ${String(status)} is not in 200..599`);
    this.status = status;
    this.statusText = init.statusText ?? '';
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  static json(data: unknown, init: ResponseInit = {}): GuestResponse {
    const headers = new GuestHeaders(init.headers);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    return new GuestResponse(JSON.stringify(data), { ...init, headers });
  }

  static redirect(url: string, status = 302): GuestResponse {
    return new GuestResponse(null, { status, headers: { location: new GuestURL(url).href } });
  }

  clone(): GuestResponse {
    return new GuestResponse(Body.bytes(this), this);
  }
}

// ---------------------------------------------------------------- timers, console

const timers = new Map<number, () => void>();
let nextTimer = 1;

function setTimeout(fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  const id = nextTimer++;
  timers.set(id, () => fn(...args));
  host.timer(id, Math.max(0, Number(ms) || 0));
  return id;
}

function clearTimeout(id: number | undefined): void {
  if (id !== undefined && timers.delete(id)) host.cancel(id);
}

/** Called by the runtime when a timer is due. */
function fireTimer(id: number): void {
  const fn = timers.get(id);
  if (fn === undefined) return;
  timers.delete(id);
  fn();
}

function format(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ?? `${a.name}: ${a.message}`;
      try {
        return typeof a === 'object' && a !== null ? JSON.stringify(a) : String(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

const console = Object.freeze({
  log: (...a: unknown[]) => host.log('info', format(a)),
  info: (...a: unknown[]) => host.log('info', format(a)),
  debug: (...a: unknown[]) => host.log('debug', format(a)),
  warn: (...a: unknown[]) => host.log('warn', format(a)),
  error: (...a: unknown[]) => host.log('error', format(a)),
});

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
 * first use on the first request, ~0.3 ms of it. Needs no host and leaves
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

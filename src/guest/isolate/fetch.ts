/** Headers, Request and Response for an isolate: buffered bodies, no streams. */

import { decoder, encoder } from './text.js';
import { GuestURL, GuestURLSearchParams } from './url.js';

export type HeadersInit = GuestHeaders | Iterable<[string, string]> | Record<string, string>;

export class GuestHeaders {
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

export type BodyInit =
  string | ArrayBuffer | ArrayBufferView | GuestURLSearchParams | null | undefined;

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

export class Body {
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
export class NormalizedUrl {
  constructor(readonly href: string) {}
}

export class GuestRequest extends Body {
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

export class GuestResponse extends Body {
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

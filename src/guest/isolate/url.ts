/** URL and URLSearchParams for an isolate; parsing is the host's (Node's WHATWG parser). */

import { host } from './host.js';

export class GuestURLSearchParams {
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

export class GuestURL {
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

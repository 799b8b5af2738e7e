/**
 * HPACK (RFC 7541), as the data plane's HTTP/2 server needs it: a decoder
 * for request header blocks (dynamic table, Huffman-coded strings) and an
 * encoder for answers that uses the static table and plain literals only,
 * so it keeps no state and the client's table size never matters to it.
 */
import { HUFFMAN_CODES, HUFFMAN_LENGTHS } from './huffman-table.js';

/** A header block that cannot be decoded: the connection's compression state is lost (COMPRESSION_ERROR). */
export class HpackError extends Error {}

/** RFC 7541, Appendix A. Index 1 is the first entry. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/** An entry's size in the dynamic table: its octets plus 32 (RFC 7541 §4.1). */
const entrySize = (name: string, value: string): number => name.length + value.length + 32;

/**
 * The Huffman code as a binary tree over flat arrays: node 0 is the root,
 * `next[2n + bit]` the child of node n for that bit (0: none), and
 * `symbol[n]` the byte a leaf stands for (-1 inside the tree, 256 for EOS).
 */
const HUFFMAN_TREE = (() => {
  const next: number[] = [0, 0];
  const symbol: number[] = [-1];
  const add = (code: number, length: number, sym: number) => {
    let n = 0;
    for (let i = length - 1; i >= 0; i--) {
      const bit = (code >>> i) & 1;
      let child = next[2 * n + bit]!;
      if (child === 0) {
        child = symbol.length;
        symbol.push(-1);
        next.push(0, 0);
        next[2 * n + bit] = child;
      }
      n = child;
    }
    symbol[n] = sym;
  };
  for (let sym = 0; sym < 256; sym++) add(HUFFMAN_CODES[sym]!, HUFFMAN_LENGTHS[sym]!, sym);
  add(0x3fffffff, 30, 256);
  return { next: Int32Array.from(next), symbol: Int16Array.from(symbol) };
})();

/** Decodes a Huffman-coded string (RFC 7541 §5.2): padding is at most 7 one bits, EOS never appears. */
function huffmanDecode(buf: Buffer, start: number, end: number): string {
  const { next, symbol } = HUFFMAN_TREE;
  const out = Buffer.allocUnsafe(Math.ceil(((end - start) * 8) / 5));
  let length = 0;
  let n = 0;
  /** Bits read since the last symbol, and whether they were all ones (a valid pad so far). */
  let pending = 0;
  let allOnes = true;
  for (let i = start; i < end; i++) {
    const byte = buf[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      n = next[2 * n + bit]!;
      pending++;
      if (bit === 0) allOnes = false;
      const sym = symbol[n]!;
      if (sym >= 0) {
        if (sym === 256) throw new HpackError('Huffman string holds EOS');
        out[length++] = sym;
        n = 0;
        pending = 0;
        allOnes = true;
      }
    }
  }
  if (pending > 7 || !allOnes) throw new HpackError('bad Huffman padding');
  return out.toString('latin1', 0, length);
}

/**
 * Decodes the header blocks of one connection, in order: the dynamic table
 * carries over from block to block. `maxTableSize` is the table size this
 * side announced (SETTINGS_HEADER_TABLE_SIZE); the peer may ask for less.
 */
export class HpackDecoder {
  /** Oldest first: index 62 is the last element. */
  readonly #table: Array<readonly [string, string]> = [];
  #size = 0;
  #capacity: number;
  readonly #limit: number;

  constructor(maxTableSize = 4096) {
    this.#limit = maxTableSize;
    this.#capacity = maxTableSize;
  }

  /** Calls `onField` for each header field of `block`, in order; throws HpackError on a malformed block. */
  decode(block: Buffer, onField: (name: string, value: string) => void): void {
    let p = 0;
    const end = block.length;
    let fields = 0;
    const int = (prefixBits: number): number => {
      const mask = (1 << prefixBits) - 1;
      let v = block[p++]! & mask;
      if (v < mask) return v;
      let shift = 0;
      for (;;) {
        if (p >= end) throw new HpackError('header block ends inside an integer');
        const b = block[p++]!;
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (v > 0x7fffffff) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return v;
      }
    };
    const str = (): string => {
      if (p >= end) throw new HpackError('header block ends before a string');
      const huffman = (block[p]! & 0x80) !== 0;
      const length = int(7);
      if (p + length > end) throw new HpackError('string runs past the header block');
      const s = huffman
        ? huffmanDecode(block, p, p + length)
        : block.toString('latin1', p, p + length);
      p += length;
      return s;
    };
    while (p < end) {
      const b = block[p]!;
      if (b & 0x80) {
        const [name, value] = this.#entry(int(7));
        onField(name, value);
        fields++;
      } else if ((b & 0xe0) === 0x20) {
        // Dynamic table size update: only before the block's first field.
        if (fields > 0) throw new HpackError('table size update after a header field');
        const size = int(5);
        if (size > this.#limit) throw new HpackError('table size update above the limit');
        this.#capacity = size;
        this.#evict(0);
      } else {
        const indexing = (b & 0xc0) === 0x40;
        const index = int(indexing ? 6 : 4);
        const name = index === 0 ? str() : this.#entry(index)[0];
        const value = str();
        if (indexing) this.#add(name, value);
        onField(name, value);
        fields++;
      }
    }
  }

  #entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const i = this.#table.length - 1 - (index - STATIC_TABLE.length - 1);
    const e = this.#table[i];
    if (i < 0 || e === undefined) throw new HpackError(`index ${index} is not in the table`);
    return e;
  }

  #add(name: string, value: string): void {
    const size = entrySize(name, value);
    this.#evict(size);
    // An entry larger than the table empties it and is not added (RFC 7541 §4.4).
    if (size > this.#capacity) return;
    this.#table.push([name, value]);
    this.#size += size;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  #evict(room: number): void {
    let drop = 0;
    let size = this.#size;
    while (size + room > this.#capacity && drop < this.#table.length) {
      const [n, v] = this.#table[drop++]!;
      size -= entrySize(n, v);
    }
    if (drop > 0) this.#table.splice(0, drop);
    this.#size = size;
  }
}

/** Static indexes by name, for literals with an indexed name. */
const STATIC_NAME = new Map<string, number>();
for (let i = STATIC_TABLE.length - 1; i >= 0; i--) STATIC_NAME.set(STATIC_TABLE[i]![0], i + 1);
/** `:status` codes with an entry of their own. */
const STATIC_STATUS = new Map<number, number>([
  [200, 8],
  [204, 9],
  [206, 10],
  [304, 11],
  [400, 12],
  [404, 13],
  [500, 14],
]);

/** Headers HTTP/2 does not carry (RFC 9113 §8.2.2): the encoder leaves them out, a request that has one is malformed. */
export const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/** A header name or value HTTP/2 cannot carry. */
export class HeaderValueError extends Error {}

const BAD_NAME = /[^!#$%&'*+\-.^_`|~0-9a-z]/;
const BAD_VALUE = /[\0\r\n]/;

export type HeaderValues = Record<string, string | string[] | number>;

/**
 * The header block of an answer: `:status`, then `headers` (names lowercased,
 * each value of an array its own field, pseudo-headers and connection-specific
 * headers left out). Throws HeaderValueError for a name or value HTTP/2
 * cannot carry.
 */
export function encodeResponseHead(status: number, headers: HeaderValues): Buffer {
  const fields: string[] = [];
  // `:status`: at most a byte, a length and three digits.
  let bytes = 5;
  for (const key in headers) {
    const v = headers[key]!;
    const name = key.toLowerCase();
    if (name.charCodeAt(0) === 58 /* ':' */ || CONNECTION_SPECIFIC.has(name)) continue;
    if (name.length === 0 || BAD_NAME.test(name))
      throw new HeaderValueError(`header name ${JSON.stringify(key)}`);
    if (Array.isArray(v))
      for (const one of v) {
        fields.push(name, one);
        bytes += name.length + one.length + 12;
      }
    else {
      const s = typeof v === 'string' ? v : String(v);
      fields.push(name, s);
      bytes += name.length + s.length + 12;
    }
  }
  const out = Buffer.allocUnsafe(bytes);
  let p = 0;
  const int = (v: number, prefixBits: number, first: number) => {
    const max = (1 << prefixBits) - 1;
    if (v < max) {
      out[p++] = first | v;
      return;
    }
    out[p++] = first | max;
    v -= max;
    while (v >= 0x80) {
      out[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[p++] = v;
  };
  const str = (s: string) => {
    int(s.length, 7, 0);
    p += out.write(s, p, 'latin1');
  };
  const statusIndex = STATIC_STATUS.get(status);
  if (statusIndex !== undefined) out[p++] = 0x80 | statusIndex;
  else {
    // Literal without indexing, name `:status` (index 8).
    out[p++] = 0x08;
    str(String(status));
  }
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (BAD_VALUE.test(value)) throw new HeaderValueError(`value of header ${name}`);
    const index = STATIC_NAME.get(name);
    if (index !== undefined) int(index, 4, 0);
    else {
      out[p++] = 0;
      str(name);
    }
    str(value);
  }
  return out.subarray(0, p);
}

/**
 * A request's header block, decoded and checked as RFC 9113 §8.2-8.3 asks:
 * lowercase token names, pseudo-headers first and only the request's four,
 * no connection-specific headers, and no control character in a value (so
 * none can reach the request head the sandbox is sent).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ConnectionError } from './frame-reader.js';
import { ErrorCode } from './frames.js';
import { CONNECTION_SPECIFIC, HpackError, type HpackDecoder } from './hpack.js';

/** Header fields a request may have. */
const MAX_HEADER_FIELDS = 1000;
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':path', ':authority']);
/** A field name: a lowercase token (RFC 9113 §8.2.1). */
const BAD_NAME = /[^!#$%&'*+\-.^_`|~0-9a-z]/;
// eslint-disable-next-line no-control-regex -- control characters are what this looks for
const BAD_VALUE = /[\0-\x08\n-\x1f\x7f]/;
// Pseudo-header values (method, path, scheme, authority) hold no space either.
const BAD_PSEUDO_VALUE = /[\0-\x20\x7f]/;
const DIGITS = /^\d{1,15}$/;

export interface RequestHead {
  /** Node's shape: repeated fields joined with ", " (`cookie`: "; "), `set-cookie` an array; no prototype. */
  headers: IncomingHttpHeaders;
  /** The block broke a rule of §8.2-8.3: the stream is reset (PROTOCOL_ERROR), the connection goes on. */
  malformed: boolean;
}

/**
 * Decodes `block` with the connection's decoder. A block that cannot be
 * decoded throws ConnectionError (COMPRESSION_ERROR): the table is lost.
 */
export function decodeRequestHead(decoder: HpackDecoder, block: Buffer): RequestHead {
  try {
    return checkedHead(decoder, block);
  } catch (err) {
    if (err instanceof HpackError)
      throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, err.message);
    throw err;
  }
}

function checkedHead(decoder: HpackDecoder, block: Buffer): RequestHead {
  // Null prototype: a header named `__proto__` is only a header.
  const headers = Object.create(null) as Record<string, string | string[]>;
  let malformed = false;
  let regularSeen = false;
  let fields = 0;
  decoder.decode(block, (name, value) => {
    if (++fields > MAX_HEADER_FIELDS) malformed = true;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (
        regularSeen ||
        !REQUEST_PSEUDO.has(name) ||
        headers[name] !== undefined ||
        value.length === 0 ||
        BAD_PSEUDO_VALUE.test(value)
      )
        malformed = true;
      headers[name] = value;
      return;
    }
    regularSeen = true;
    if (
      name.length === 0 ||
      BAD_NAME.test(name) ||
      BAD_VALUE.test(value) ||
      CONNECTION_SPECIFIC.has(name) ||
      (name === 'te' && value !== 'trailers') ||
      // The sandbox is sent the body by this length: it must be one number (a repeat joins into two).
      (name === 'content-length' && (headers[name] !== undefined || !DIGITS.test(value)))
    )
      malformed = true;
    const had = headers[name];
    if (had === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (Array.isArray(had)) had.push(value);
    else headers[name] = `${had}${name === 'cookie' ? '; ' : ', '}${value}`;
  });
  return { headers, malformed };
}

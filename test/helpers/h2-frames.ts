/** HTTP/2 frames and HPACK fields written by hand, for tests that play a client no library would be. */

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** One frame: 9-octet header, then `payload`. */
export function h2Frame(
  type: number,
  flags: number,
  stream: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * An HPACK literal field without indexing (RFC 7541 §6.2.2), no Huffman:
 * `name` a string (a new name) or a static-table index under 15.
 */
export function hpackLiteral(name: string | number, value: string): Buffer {
  const v = Buffer.from(value, 'latin1');
  const n =
    typeof name === 'number'
      ? Buffer.from([name])
      : Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name)]);
  return Buffer.concat([n, Buffer.from([v.length]), v]);
}

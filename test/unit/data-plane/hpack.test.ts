import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HeaderValueError,
  HpackDecoder,
  HpackError,
  encodeResponseHead,
} from '../../../src/data-plane/h2/hpack.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decode(d: HpackDecoder, block: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  d.decode(block, (n, v) => out.push([n, v]));
  return out;
}

describe('HPACK decoder', () => {
  it('decodes the RFC 7541 request examples without Huffman coding (C.3), the table carrying over', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.deepEqual(decode(d, hex('8286 84be 5808 6e6f 2d63 6163 6865')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
      ['cache-control', 'no-cache'],
    ]);
    assert.deepEqual(
      decode(d, hex('8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65')),
      [
        [':method', 'GET'],
        [':scheme', 'https'],
        [':path', '/index.html'],
        [':authority', 'www.example.com'],
        ['custom-key', 'custom-value'],
      ],
    );
  });

  it('decodes the RFC 7541 request examples with Huffman coding (C.4)', () => {
    const d = new HpackDecoder();
    assert.deepEqual(decode(d, hex('8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff')), [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':path', '/'],
      [':authority', 'www.example.com'],
    ]);
    assert.deepEqual(decode(d, hex('8286 84be 5886 a8eb 1064 9cbf')).at(-1), [
      'cache-control',
      'no-cache',
    ]);
    assert.deepEqual(
      decode(d, hex('8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf')).at(-1),
      ['custom-key', 'custom-value'],
    );
  });

  it('evicts the oldest entries when the client shrinks the table', () => {
    const d = new HpackDecoder();
    // custom-key: custom-value, indexed (index 62).
    decode(d, hex('400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'));
    assert.deepEqual(decode(d, hex('be')), [['custom-key', 'custom-value']]);
    // A table size update to 0 empties it: index 62 no longer exists.
    assert.throws(() => decode(d, hex('20 be')), HpackError);
  });

  it('rejects malformed blocks with HpackError', () => {
    const bad = [
      '80', // index 0
      'ff 80 80 80 80 80 01', // an integer past 2^31
      '40 05 61', // a string longer than the block
      '40 81 ff 00', // Huffman: 8 padding bits
      '41 84 ff ff ff ff', // Huffman: EOS (30 one bits) inside the string
      '3f e2 1f', // table size update to 4097, above the 4096 announced
      '82 20', // table size update after a field
      'c0', // an index past the table
    ];
    for (const block of bad)
      assert.throws(() => decode(new HpackDecoder(), hex(block)), HpackError, block);
  });
});

describe('HPACK encoder (answers)', () => {
  it('encodes status and headers so that a decoder gets them back, arrays as repeated fields', () => {
    const block = encodeResponseHead(200, {
      'content-type': 'text/plain',
      'X-Custom': 'v',
      'set-cookie': ['a=1', 'b=2'],
      'content-length': 2,
    });
    assert.deepEqual(decode(new HpackDecoder(), block), [
      [':status', '200'],
      ['content-type', 'text/plain'],
      ['x-custom', 'v'],
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['content-length', '2'],
    ]);
    assert.equal(block[0], 0x88, '200 is the static entry 8');
    assert.deepEqual(decode(new HpackDecoder(), encodeResponseHead(503, {})), [[':status', '503']]);
  });

  it('leaves out pseudo-headers and connection-specific headers', () => {
    const block = encodeResponseHead(200, {
      ':status': 500,
      connection: 'close',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      kept: 'yes',
    });
    assert.deepEqual(decode(new HpackDecoder(), block), [
      [':status', '200'],
      ['kept', 'yes'],
    ]);
  });

  it('refuses a value with a line break or a name that is not a token', () => {
    assert.throws(() => encodeResponseHead(200, { x: 'a\r\nb: c' }), HeaderValueError);
    assert.throws(() => encodeResponseHead(200, { 'bad name': 'v' }), HeaderValueError);
  });

  it('encodes long names and values (multi-octet lengths)', () => {
    const value = 'v'.repeat(5000);
    const block = encodeResponseHead(404, { ['n'.repeat(300)]: value });
    assert.deepEqual(decode(new HpackDecoder(), block), [
      [':status', '404'],
      ['n'.repeat(300), value],
    ]);
  });
});

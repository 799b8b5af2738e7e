/**
 * The data plane's HTTP/1.1 response reader: every framing a sandbox may
 * use, fed whole and a byte at a time, and the malformed answers it must
 * refuse rather than pass on.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, ResponseParser } from '../../../src/data-plane/http1-response.js';

interface Read {
  status: number;
  /** Each name with its values, in order. */
  headers: Record<string, string[]>;
  length: number;
  body: string;
  ended: number;
}

function reader(): { parser: ResponseParser; read: Read[] } {
  const read: Read[] = [];
  const parser = new ResponseParser({
    head: (status, raw, length) => {
      const headers: Record<string, string[]> = {};
      for (let i = 0; i < raw.length; i += 2) (headers[raw[i]!] ??= []).push(raw[i + 1]!);
      read.push({ status, headers, length, body: '', ended: 0 });
    },
    data: (chunk) => (read.at(-1)!.body += chunk.toString('latin1')),
    end: () => read.at(-1)!.ended++,
  });
  return { parser, read };
}

/** Feeds `text` whole and then byte by byte; both must read the same. */
function both(text: string, opts: { head?: boolean; close?: boolean } = {}): Read {
  const results = [1 << 20, 1].map((step) => {
    const { parser, read } = reader();
    parser.expect(opts.head === true);
    const bytes = Buffer.from(text, 'latin1');
    for (let i = 0; i < bytes.length; i += step) parser.feed(bytes.subarray(i, i + step));
    if (opts.close === true) parser.closed();
    assert.equal(read.length, 1, 'one answer');
    assert.ok(parser.done, 'read in full');
    return read[0]!;
  });
  assert.deepEqual(results[1], results[0]);
  return results[0]!;
}

describe('ResponseParser', () => {
  it('reads a fixed-length answer, its headers lower-cased, repeated ones as a list', () => {
    const r = both(
      'HTTP/1.1 201 Created\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\nhello',
    );
    assert.equal(r.status, 201);
    assert.equal(r.body, 'hello');
    assert.equal(r.ended, 1);
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.deepEqual(r.headers['x-empty'], ['']);
    assert.equal(r.length, 5);
  });

  it('reads a chunked answer with extensions and trailers', () => {
    const r = both(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n',
    );
    assert.equal(r.body, 'hello, world!!!');
    assert.equal(r.length, -1);
    assert.equal(r.ended, 1);
  });

  it('reads an answer without length until the connection closes, and does not keep the connection', () => {
    const { parser, read } = reader();
    parser.expect(false);
    parser.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\npart one, '));
    parser.feed(Buffer.from('part two'));
    assert.equal(read[0]!.ended, 0);
    parser.closed();
    assert.equal(read[0]!.body, 'part one, part two');
    assert.equal(read[0]!.ended, 1);
    assert.equal(parser.reusable, false);
    both('HTTP/1.1 200 OK\r\n\r\nuntil close', { close: true });
  });

  it('gives no body to HEAD, 204 and 304, and skips informational answers', () => {
    assert.equal(both('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', { head: true }).body, '');
    assert.equal(both('HTTP/1.1 204 No Content\r\n\r\n').status, 204);
    assert.equal(both('HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n').body, '');
    const r = both(
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    );
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers.link, undefined);
  });

  it('keeps the connection for HTTP/1.1 unless told to close, and for HTTP/1.0 only if told to keep it', () => {
    const cases: Array<[string, boolean]> = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true],
      ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n', true],
      // A length beside a transfer coding: read by the coding, then the connection is not trusted.
      [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n',
        false,
      ],
    ];
    for (const [text, reusable] of cases) {
      const { parser } = reader();
      parser.expect(false);
      parser.feed(Buffer.from(text));
      assert.ok(parser.done, text);
      assert.equal(parser.reusable, reusable, text);
    }
  });

  it('reads the sandbox keep-alive time, and distrusts a connection with bytes after the answer', () => {
    const { parser } = reader();
    parser.expect(false);
    parser.feed(
      Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 1\r\n\r\nx'),
    );
    assert.equal(parser.keepAliveHintMs, 5000);
    assert.equal(parser.reusable, true);
    parser.feed(Buffer.from('HTTP/1.1 200 OK\r\n'));
    assert.equal(parser.reusable, false);
  });

  it('refuses malformed answers', () => {
    const bad = [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\n folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxyz',
      'HTTP/1.1 101 Switching Protocols\r\n\r\n',
    ];
    for (const text of bad) {
      const { parser } = reader();
      parser.expect(false);
      assert.throws(() => parser.feed(Buffer.from(text)), ProtocolError, text);
    }
    const { parser } = reader();
    parser.expect(false);
    assert.throws(() => parser.feed(Buffer.alloc(70 * 1024, 'a')), /too large/);
  });

  it('says an answer cut short by the connection closing is broken', () => {
    for (const text of [
      'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel',
      'HTTP/1.1 200 OK\r\nContent-',
    ]) {
      const { parser } = reader();
      parser.expect(false);
      parser.feed(Buffer.from(text));
      assert.throws(() => parser.closed(), ProtocolError, text);
    }
  });

  it('accepts a status line without a reason, and repeated content-lengths that agree', () => {
    assert.equal(both('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').status, 200);
    assert.equal(
      both('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body,
      'ok',
    );
  });
});

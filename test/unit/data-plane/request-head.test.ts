/**
 * The header lines the data plane writes to a sandbox for a client's
 * request: `host` first, the client's end-to-end headers in its order,
 * nothing hop-by-hop (RFC 9110 §7.6.1), no HTTP/2 pseudo-header.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { requestHeaderLines } from '../../../src/data-plane/proxy.js';

describe('requestHeaderLines', () => {
  it("writes host first, then the client's headers in its order, repeated ones a line each", () => {
    const headers: IncomingHttpHeaders = {
      ':method': 'POST',
      ':path': '/run?x=1',
      ':authority': 'fn.example',
      ':scheme': 'http',
      workload: 'trace',
      'content-length': '3',
      'set-cookie': ['a=1', 'b=2'],
      'user-agent': 'Go-http-client/2.0',
    };
    assert.equal(
      requestHeaderLines(headers, 'fn'),
      'host: fn\r\nworkload: trace\r\ncontent-length: 3\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nuser-agent: Go-http-client/2.0\r\n',
    );
  });

  it("leaves out hop-by-hop headers, the headers Connection names and the client's own host", () => {
    const headers: IncomingHttpHeaders = {
      host: 'client-given',
      connection: 'keep-alive, X-Secret',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      trailer: 'x-sum',
      'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA',
      expect: '100-continue',
      'x-secret': 'not for the sandbox',
      'x-kept': 'yes',
    };
    assert.equal(requestHeaderLines(headers, 'fn'), 'host: fn\r\nx-kept: yes\r\n');
  });

  it('keeps every header when Connection names only keep-alive or close', () => {
    for (const connection of ['keep-alive', ' Close ']) {
      const headers: IncomingHttpHeaders = { connection, 'x-a': '1', 'x-b': '2' };
      assert.equal(requestHeaderLines(headers, 'h'), 'host: h\r\nx-a: 1\r\nx-b: 2\r\n');
    }
  });
});

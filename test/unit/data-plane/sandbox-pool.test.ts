/**
 * The data plane's connections to sandboxes (SandboxPool, shared per
 * address by Upstreams), over real sockets on loopback: the early
 * connection, keep-alive reuse, request bodies of known and unknown length,
 * a large answer read with backpressure, answers ended by the connection's
 * close, refusals and broken answers (an error, never a hang, never a
 * request sent twice).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  SandboxPool,
  type SandboxRequest,
  type SandboxCall,
} from '../../../src/data-plane/sandbox-pool.js';
import { Upstreams } from '../../../src/data-plane/upstreams.js';

interface Answer {
  status: number;
  body: string;
}

/** One request through `pool`; `slow` reads the body a piece at a time, pausing between. */
function call(pool: SandboxPool, req: Partial<SandboxRequest> = {}, slow = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answer: Answer;
    const chunks: Buffer[] = [];
    let c: SandboxCall | undefined = undefined;
    c = pool.request(
      { method: 'GET', path: '/', headerLines: 'host: sb\r\n', sized: false, body: null, ...req },
      {
        onResponseStart: (status) => (answer = { status, body: '' }),
        onResponseData: (chunk) => {
          chunks.push(chunk);
          if (!slow) return true;
          setTimeout(() => c!.resume(), 1);
          return false;
        },
        onResponseEnd: () => resolve({ ...answer, body: Buffer.concat(chunks).toString() }),
        onResponseError: reject,
      },
    );
  });
}

const servers: Array<Server | NetServer> = [];
function listen(server: Server | NetServer): Promise<number> {
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

after(() => {
  for (const s of servers) {
    if ('closeAllConnections' in s) s.closeAllConnections();
    s.close();
  }
});

describe('SandboxPool', () => {
  it('connects at once, serves the first request over that connection and reuses it', async () => {
    let connections = 0;
    let requests = 0;
    const server = createServer((_req, res) => res.end(`request ${++requests}`));
    server.on('connection', () => connections++);
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    for (let i = 0; i < 100 && connections === 0; i++) await sleep(5);
    assert.equal(connections, 1, 'connected before any request');
    assert.equal(requests, 0);
    assert.equal((await call(pool)).body, 'request 1');
    assert.equal((await call(pool)).body, 'request 2');
    assert.equal(connections, 1, 'the early connection served both');
    // Requests at once get a connection each.
    const answers = await Promise.all([call(pool), call(pool), call(pool)]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200],
    );
    assert.equal(connections, 3);
    pool.destroy();
  });

  it('uses a connection still being made, or a new one if the sandbox dropped it', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const port = await listen(server);
    // Asked at once: the early connection's handshake is still under way.
    const pool = new SandboxPool('127.0.0.1', port);
    assert.equal((await call(pool)).body, 'ok');
    server.closeAllConnections();
    await sleep(50);
    assert.equal((await call(pool)).body, 'ok');
    pool.destroy();
  });

  it('never sends a request twice: a connection closed before the answer fails it', async () => {
    // Answers the first request on each connection, then closes it when the next arrives.
    let requests = 0;
    const server = createNetServer((socket) => {
      let served = 0;
      socket.on('data', () => {
        requests++;
        if (served++ === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst');
        else socket.destroy();
      });
    });
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    assert.equal((await call(pool)).body, 'first');
    await assert.rejects(call(pool), /closed the connection|ECONNRESET/);
    assert.equal(requests, 2);
    assert.equal((await call(pool)).body, 'first', 'the next request gets a new connection');
    pool.destroy();
  });

  it('ends an answer without a length when the sandbox closes the connection', async () => {
    const server = createNetServer((socket) =>
      socket.once('data', () =>
        socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close\n'),
      ),
    );
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    assert.deepEqual(await call(pool), { status: 200, body: 'until close\n' });
    assert.deepEqual(await call(pool), { status: 200, body: 'until close\n' });
    pool.destroy();
  });

  it('sends bodies with their length or chunked, and reads a large answer with backpressure', async () => {
    // Varied, so that a piece overwritten by a later read would show.
    const big = randomBytes(2 * 1024 * 1024).toString('base64');
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/big') return res.end(big);
        res.end(
          `${req.headers['content-length'] ?? req.headers['transfer-encoding']}:${Buffer.concat(chunks).toString()}`,
        );
      });
    });
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    const sized = await call(pool, {
      method: 'POST',
      headerLines: 'host: sb\r\ncontent-length: 11\r\n',
      sized: true,
      body: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
    });
    assert.equal(sized.body, '11:hello world');
    const chunked = await call(pool, {
      method: 'PUT',
      body: Readable.from([Buffer.from('a'), Buffer.alloc(0), Buffer.from('bc')]),
    });
    assert.equal(chunked.body, 'chunked:abc');
    const answer = await call(pool, { path: '/big' }, true);
    assert.equal(answer.body.length, big.length);
    assert.equal(answer.body, big);
    // The connection paused for the reader serves the next request.
    const next = await Promise.race([call(pool), sleep(2000).then(() => 'hung')]);
    assert.notEqual(next, 'hung');
    pool.destroy();
  });

  it('sends a body still coming as it comes, not held for its end', async () => {
    // The head waits for the body that came with it; one still coming must not wait for its end.
    const server = createServer((req, res) => {
      if (req.method === 'GET') res.end();
      else req.once('data', (c: Buffer) => res.end(`first piece: ${c.toString()}`));
    });
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    assert.equal((await call(pool)).status, 200);
    const body = new PassThrough();
    const answer = call(pool, { method: 'POST', body });
    body.write('one');
    const got = await Promise.race([answer, sleep(2000).then(() => 'hung')]);
    body.end('two');
    assert.deepEqual(got, { status: 200, body: 'first piece: one' });
    pool.destroy();
  });

  it('fails a request to an address that refuses, with ECONNREFUSED, without hanging', async () => {
    const probe = createNetServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((resolve) => probe.close(resolve));
    const pool = new SandboxPool('127.0.0.1', port);
    await assert.rejects(call(pool), (err: { code?: string }) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
    pool.destroy();
  });

  it('fails an answer the sandbox breaks off or garbles, and a request given up on hears nothing', async () => {
    const server = createNetServer((socket) =>
      socket.on('data', (d) => {
        const path = d.toString().split(' ')[1];
        if (path === '/cut') socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
        else if (path === '/garbled') socket.write('SPDY/3 200 OK\r\n\r\n');
        // '/silent': nothing at all
      }),
    );
    const port = await listen(server);
    const pool = new SandboxPool('127.0.0.1', port);
    await assert.rejects(call(pool, { path: '/cut' }), /closed the connection/);
    await assert.rejects(call(pool, { path: '/garbled' }), /malformed status line/);
    let heard = 0;
    const c = pool.request(
      { method: 'GET', path: '/silent', headerLines: '', sized: false, body: null },
      {
        onResponseStart: () => heard++,
        onResponseData: () => (heard++, true),
        onResponseEnd: () => heard++,
        onResponseError: () => heard++,
      },
    );
    await sleep(20);
    c.abort();
    await sleep(20);
    assert.equal(heard, 0);
    assert.equal(pool.connections, 0, 'the connection given up on was closed');
    pool.destroy();
  });
});

describe('Upstreams', () => {
  it('shares a pool per address and closes it with its last endpoint', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    const port = await listen(server);
    const ups = new Upstreams();
    const a = ups.acquire('127.0.0.1', port);
    const b = ups.acquire('127.0.0.1', port);
    assert.equal(a, b);
    ups.release('127.0.0.1', port);
    assert.equal(a.closing, false);
    assert.equal((await call(a)).body, 'ok');
    ups.release('127.0.0.1', port);
    assert.equal(a.closing, true);
    await sleep(20);
    assert.equal(a.connections, 0);
    assert.notEqual(ups.acquire('127.0.0.1', port), a, 'a new pool once the last was released');
    ups.close();
  });
});

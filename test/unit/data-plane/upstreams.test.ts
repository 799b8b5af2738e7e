/**
 * The data plane's upstream pools connect to a new sandbox address before any
 * request needs it, and the first request goes over that connection; an
 * address that refuses still fails the request at once (never a hang).
 * Real sockets on loopback.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upstreams } from '../../../src/data-plane/upstreams.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

async function get(ups: Upstreams, port: number): Promise<string> {
  const pool = ups.acquire('127.0.0.1', port);
  try {
    const r = await pool.request({ path: '/', method: 'GET' });
    return `${r.statusCode} ${await r.body.text()}`;
  } finally {
    ups.release('127.0.0.1', port);
  }
}

describe('Upstreams', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('connects to a new address at once and serves the first request over that connection', async () => {
    let connections = 0;
    let requests = 0;
    const server = createServer((_req, res) => res.end(`request ${++requests}`));
    server.on('connection', () => connections++);
    servers.push(server);
    const port = await listen(server);
    const ups = new Upstreams();
    const pool = ups.acquire('127.0.0.1', port);
    for (let i = 0; i < 100 && connections === 0; i++) await sleep(5);
    assert.equal(connections, 1, 'connected before any request');
    assert.equal(requests, 0);
    const r = await pool.request({ path: '/', method: 'GET' });
    assert.equal(await r.body.text(), 'request 1');
    assert.equal(connections, 1, 'the early connection was the one used');
    ups.release('127.0.0.1', port);
    await ups.close();
  });

  it('uses a connection still being made, or a new one if the early one failed', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    servers.push(server);
    const port = await listen(server);
    const ups = new Upstreams();
    // Asked at once: the early connection's handshake is still under way.
    assert.equal(await get(ups, port), '200 ok');
    // The server drops every connection it has: the early one of the next acquire is gone too.
    const pool = ups.acquire('127.0.0.1', port);
    await sleep(50);
    server.closeAllConnections();
    await sleep(50);
    const r = await pool.request({ path: '/', method: 'GET' });
    assert.equal(await r.body.text(), 'ok');
    ups.release('127.0.0.1', port);
    await ups.close();
  });

  it('fails a request to an address that refuses, with ECONNREFUSED, without hanging', async () => {
    const probe = createNetServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, '127.0.0.1', () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((resolve) => probe.close(resolve));
    const ups = new Upstreams();
    await assert.rejects(get(ups, port), (err: { code?: string }) => {
      assert.equal(err.code, 'ECONNREFUSED');
      return true;
    });
    await ups.close();
  });
});

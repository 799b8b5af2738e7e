/**
 * EndpointState's end: how a sandbox ended reaches a request waiting for it
 * when the control plane says so (not when the wait runs out), at once when
 * it is already known, and the wait gives up with undefined when nothing
 * comes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EndpointState } from '../../../src/data-plane/function-state.js';
import { SandboxPool } from '../../../src/data-plane/sandbox-pool.js';

/** Longer than any test here may take: a wait that runs this long was never woken. */
const NEVER_MS = 60_000;

describe('EndpointState.whenEnded', () => {
  let server: Server;
  let port: number;
  const pools: SandboxPool[] = [];

  before(async () => {
    server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const p of pools) p.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const endpoint = (id: string): EndpointState => {
    const pool = new SandboxPool('127.0.0.1', port);
    pools.push(pool);
    return new EndpointState(
      { id, function: 'fn', workerId: 'w-1', host: '127.0.0.1', port },
      pool,
    );
  };

  it('wakes a waiting request with the reason when the sandbox ends', async () => {
    const ep = endpoint('sb-1');
    const waiting = ep.whenEnded(NEVER_MS);
    await sleep(5);
    ep.ended('killed by the OOM killer');
    // The guard must not hold the process open once the race is won.
    const first = await Promise.race([waiting, sleep(2_000, 'still waiting', { ref: false })]);
    assert.equal(first, 'killed by the OOM killer');
  });

  it('answers at once when the end is already known, and keeps the first reason', async () => {
    const ep = endpoint('sb-2');
    ep.ended('exited with code 1');
    ep.ended('stopped');
    assert.equal(await ep.whenEnded(NEVER_MS), 'exited with code 1');
  });

  it('gives up with undefined when no end comes within the wait', async () => {
    const ep = endpoint('sb-3');
    assert.equal(await ep.whenEnded(20), undefined);
    // A later end is still recorded for whoever asks next.
    ep.ended('stopped');
    assert.equal(await ep.whenEnded(20), 'stopped');
  });
});

/**
 * Looking for ports on loopback: a block of free ports skips a port a
 * server holds, and there is none when the range is too small or held.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { freePortBlock } from '../../src/shared/port-probe.js';

const HOST = '127.0.0.1';
const held: Server[] = [];

function hold(port = 0): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, HOST, () => {
      held.push(s);
      resolve((s.address() as AddressInfo).port);
    });
  });
}

after(() => {
  for (const s of held) s.close();
});

describe('freePortBlock', () => {
  it('skips a held port, and finds none where every block holds one', async () => {
    const p = (await hold())!;
    assert.equal(await freePortBlock(HOST, 1, p, p + 1), undefined);
    assert.equal(await freePortBlock(HOST, 3, p, p + 3), undefined);
    // The two ports after it, if nothing else holds them, are the block.
    const next = await freePortBlock(HOST, 2, p, p + 3);
    if (next !== undefined) assert.equal(next, p + 1);
    // Holding one of them leaves no block of two.
    if (next !== undefined && (await hold(p + 2)) !== undefined)
      assert.equal(await freePortBlock(HOST, 2, p, p + 3), undefined);
  });

  it('gives the first port of a block that is free', async () => {
    const first = await freePortBlock(HOST, 10, 15_000, 16_000);
    assert.ok(first !== undefined && first >= 15_000 && first + 10 <= 16_000);
    // Every port of it can be listened on.
    for (let port = first; port < first + 10; port++) {
      const got = await hold(port);
      assert.equal(got, port);
    }
  });
});

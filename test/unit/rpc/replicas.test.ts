/**
 * What workers and data planes use to follow control-plane replicas: the
 * leader channel (moves on past replicas that refuse or cannot be reached)
 * and the epoch fence (refuses calls from an older leader), over the
 * in-process transport and over real sockets.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { silentLogger } from '../../../src/shared/logger.js';
import {
  ConflictError,
  NotLeaderError,
  RemoteError,
  StaleLeaderError,
} from '../../../src/shared/errors.js';
import { defineService, unary } from '../../../src/rpc/contract.js';
import { InProcessTransport } from '../../../src/rpc/in-process-transport.js';
import { connectToLeader } from '../../../src/rpc/leader-channel.js';
import { EpochFence, epochMetadata } from '../../../src/rpc/epoch.js';
import { tcpTransport, withCallMetadata, type RpcTransport } from '../../../src/rpc/transport.js';

const who = defineService('who', {
  name: unary(z.object({}), z.object({ name: z.string() })),
  conflict: unary(z.object({}), z.object({})),
});

/** Replicas on `transport`: each answers its name, or refuses as a follower. */
async function replicas(transport: RpcTransport, leader: string, names: string[]) {
  const calls = new Map<string, number>();
  const addresses = [];
  for (const name of names) {
    const listener = transport.createListener(silentLogger());
    listener.mount(who, {
      name: () => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        if (name !== leader) return Promise.reject(new NotLeaderError(`${name} follows`));
        return Promise.resolve({ name });
      },
      conflict: () => Promise.reject(new ConflictError('not a replica matter')),
    });
    const a = await listener.listen(0, '127.0.0.1');
    addresses.push({ host: '127.0.0.1', port: a.port, close: () => listener.close() });
  }
  return { addresses, calls };
}

for (const [label, make] of [
  ['in-process', () => new InProcessTransport()],
  ['HTTP/2', () => tcpTransport],
] as const) {
  describe(`leader channel (${label})`, () => {
    it('moves on past followers to the leader, and stays with it', async () => {
      const transport = make();
      const r = await replicas(transport, 'c', ['a', 'b', 'c']);
      const channel = connectToLeader(transport, r.addresses, silentLogger());
      const client = channel.client(who);
      assert.deepEqual(await client.name({}), { name: 'c' });
      assert.deepEqual(await client.name({}), { name: 'c' });
      assert.deepEqual(Object.fromEntries(r.calls), { a: 1, b: 1, c: 2 });
      await channel.close();
      for (const a of r.addresses) await a.close();
    });

    it('moves on past a replica nobody serves, and passes other errors through', async () => {
      const transport = make();
      const r = await replicas(transport, 'b', ['a', 'b']);
      await r.addresses[0]!.close();
      const channel = connectToLeader(transport, r.addresses, silentLogger());
      const client = channel.client(who);
      assert.deepEqual(await client.name({}, { deadlineMs: 3000 }), { name: 'b' });
      await assert.rejects(
        client.conflict({}),
        (err: unknown) => err instanceof RemoteError && err.remoteCode === 'BATON_ERR_CONFLICT',
      );
      await channel.close();
      await r.addresses[1]!.close();
    });

    it('fails within the deadline when no replica leads', async () => {
      const transport = make();
      const r = await replicas(transport, 'nobody', ['a', 'b']);
      const channel = connectToLeader(transport, r.addresses, silentLogger());
      const t0 = Date.now();
      await assert.rejects(channel.client(who).name({}, { deadlineMs: 300 }));
      assert.ok(Date.now() - t0 < 3000);
      await channel.close();
      for (const a of r.addresses) await a.close();
    });
  });

  describe(`epoch fence (${label})`, () => {
    it('admits the same or a newer epoch and refuses an older one', async () => {
      const transport = make();
      const fence = new EpochFence(silentLogger());
      const listener = transport.createListener(silentLogger(), { admit: fence.admit });
      listener.mount(who, {
        name: () => Promise.resolve({ name: 'worker' }),
        conflict: () => Promise.resolve({}),
      });
      const { port } = await listener.listen(0, '127.0.0.1');
      const as = (epoch: number) =>
        withCallMetadata(
          transport,
          epochMetadata(() => epoch),
        )
          .connect({ host: '127.0.0.1', port, logger: silentLogger() })
          .client(who);
      assert.deepEqual(await as(0).name({}), { name: 'worker' }, 'a lone control plane');
      assert.deepEqual(await as(5).name({}), { name: 'worker' });
      assert.equal(fence.highest, 5);
      assert.deepEqual(await as(5).name({}), { name: 'worker' });
      await assert.rejects(
        as(4).name({}),
        (err: unknown) =>
          err instanceof RemoteError && err.remoteCode === new StaleLeaderError('').code,
      );
      assert.deepEqual(await as(7).name({}), { name: 'worker' });
      assert.equal(fence.highest, 7);
      await assert.rejects(as(5).name({}), RemoteError);
      await listener.close();
    });
  });
}

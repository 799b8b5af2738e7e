/**
 * The election among control-plane replicas, on a real etcd: one leads at a
 * time, and a follower that sees the leader's process gone (its RPC port
 * refuses) takes over without waiting for the leader's lease to expire.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { silentLogger } from '../../../src/shared/logger.js';
import { EtcdStore } from '../../../src/store/etcd.js';
import { Leadership } from '../../../src/control-plane/leadership.js';
import { NotLeaderError } from '../../../src/shared/errors.js';
import { spec } from '../../helpers/specs.js';
import { ETCD_MISSING, startEtcd, type TestEtcd } from '../../helpers/processes.js';
import { until as waitUntil } from '../../helpers/until.js';

/** Long enough that a take-over within TAKE_OVER_WAIT_MS cannot come from the lease expiring. */
const LEASE_TTL_S = 20;
const TAKE_OVER_WAIT_MS = 5_000;

interface Candidate {
  id: string;
  store: EtcdStore;
  leadership: Leadership;
  /** Stands for the replica's process: its RPC port. */
  server: Server;
  sessions: Set<Socket>;
  elected: number[];
  deposed: string[];
}

async function candidate(etcd: TestEtcd, id: string, prefix: string): Promise<Candidate> {
  const server = createServer();
  const sessions = new Set<Socket>();
  server.on('connection', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const store = new EtcdStore({ endpoints: [etcd.endpoint], keyPrefix: prefix });
  const c: Candidate = {
    id,
    store,
    server,
    sessions,
    elected: [],
    deposed: [],
    leadership: undefined as unknown as Leadership,
  };
  c.leadership = new Leadership({
    store,
    self: { id, rpc: `127.0.0.1:${port}`, registration: `http://127.0.0.1:${port}`, pid: 0 },
    leaseTtlS: LEASE_TTL_S,
    logger: silentLogger(),
    onElected: (epoch) => c.elected.push(epoch),
    onDeposed: (reason) => c.deposed.push(reason),
  });
  c.leadership.start();
  return c;
}

/** Ends a candidate's "process": its port refuses from now on (its election goes on, as a hung process's would). */
function killPort(c: Candidate): void {
  c.server.close();
  for (const s of c.sessions) s.destroy();
}

const until = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) =>
  waitUntil(what, check, timeoutMs);

describe('Leadership on etcd', { skip: ETCD_MISSING }, () => {
  let etcd: TestEtcd;
  before(async () => {
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd.stop();
  });

  it('elects one leader, and a follower replaces a leader whose process is gone, whose writes are then refused', async () => {
    const prefix = `/test-${Date.now()}/`;
    const all: Candidate[] = [];
    try {
      for (const id of ['a', 'b', 'c']) {
        const x = await candidate(etcd, id, prefix);
        all.push(x);
        // The order of campaigns decides the order of leaders: each key is made before the next.
        await until(`${id} to campaign`, async () =>
          (await x.leadership.replicas()).some((r) => r.id === id),
        );
      }
      const [a, b, c] = all as [Candidate, Candidate, Candidate];
      await until('a to lead', () => a.leadership.leading);
      await until('the followers to know a leads', () =>
        [b, c].every((x) => x.leadership.leader?.id === 'a'),
      );
      assert.deepEqual(a.elected, [a.leadership.epoch]);
      assert.deepEqual(
        (await b.leadership.replicas()).map((r) => r.id),
        ['a', 'b', 'c'],
      );

      await a.store.putFunction(spec({ name: 'by-a', image: 'hello' }));

      killPort(a);
      // b is next in line; a's lease would last for seconds more.
      await until('b to lead', () => b.leadership.leading, TAKE_OVER_WAIT_MS);
      assert.ok(b.leadership.epoch > a.leadership.epoch, 'a later leader has a higher epoch');
      await until('c to follow b', () => c.leadership.leader?.id === 'b');
      // a, alive after all (only its port was gone), can no longer write; b can.
      await assert.rejects(
        a.store.putFunction(spec({ name: 'late', image: 'hello' })),
        NotLeaderError,
      );
      await b.store.putFunction(spec({ name: 'by-b', image: 'hello' }));
      assert.deepEqual((await c.store.listFunctions()).map((f) => f.name).sort(), ['by-a', 'by-b']);
      // Its lease was revoked: it is told so at its next keep-alive.
      await until('a to be deposed', () => a.deposed.length === 1, LEASE_TTL_S * 1000);
      assert.equal(a.leadership.leading, false);
      assert.equal(c.leadership.leading, false);
      assert.deepEqual(b.elected, [b.leadership.epoch], 'b was elected once');
    } finally {
      for (const x of all) {
        await x.leadership.close();
        await x.store.close();
        killPort(x);
      }
    }
  });
});

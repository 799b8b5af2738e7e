/**
 * The control plane in-process, with an in-memory store and stand-in
 * workers and data planes on an in-process RPC transport: registration,
 * deletion, scaling from a data plane's report, placement that finds no
 * room, creation failures, replacement of dead sandboxes, store outages and
 * recovery after a restart. No process, no socket.
 */
import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/shared/logger.js';
import { systemClock, type Clock } from '../../../src/shared/clock.js';
import { compileFunctionSpec } from '../../../src/shared/function-spec.js';
import { ConflictError, InvalidArgumentError, StoreError } from '../../../src/shared/errors.js';
import { ControlPlane } from '../../../src/control-plane/control-plane.js';
import { LeastAllocatedPlacement } from '../../../src/control-plane/placement/least-allocated.js';
import { KpaAutoscaler } from '../../../src/control-plane/autoscaler/kpa.js';
import { InProcessTransport } from '../../../src/rpc/in-process-transport.js';
import { MemoryStore, memoryBacking, type MemoryBacking } from '../../../src/store/memory.js';
import { NO_CAPABILITIES } from '../../../src/shared/cluster-objects.js';
import { FakeDataPlane, FakeWorker } from '../../helpers/fake-members.js';
import { until as waitUntil } from '../../helpers/until.js';

interface Setup {
  cp: ControlPlane;
  store: MemoryStore;
  transport: InProcessTransport;
  port: number;
}

const started: ControlPlane[] = [];
afterEach(async () => {
  for (const cp of started.splice(0)) await cp.close();
});

/** A control plane on `store`, not yet necessarily loaded; its autoscaler decides every `tickMs`. */
async function launchCp(
  store: MemoryStore,
  transport: InProcessTransport,
  tickMs = 50,
  clock: Clock = systemClock,
): Promise<ControlPlane> {
  const cp = await ControlPlane.start({
    host: 'cp',
    rpcPort: 0,
    store,
    placement: new LeastAllocatedPlacement(),
    autoscaler: new KpaAutoscaler(tickMs),
    clock,
    logger: silentLogger(),
    transport,
  });
  started.push(cp);
  return cp;
}

async function startCp(
  backing: MemoryBacking = memoryBacking(),
  transport = new InProcessTransport(),
): Promise<Setup> {
  const store = new MemoryStore(backing);
  const cp = await launchCp(store, transport);
  await cp.whenReady();
  return { cp, store, transport, port: cp.rpcAddress.port };
}

const until = (what: string, check: () => boolean, timeoutMs = 3000) =>
  waitUntil(what, check, timeoutMs, 5);

const spec = (name: string, extra: object = {}) =>
  compileFunctionSpec({ name, image: 'x', ...extra });

describe('control plane (in-process)', () => {
  it('rolls a changed spec out as a new revision: ready first, then all traffic; a split and a rollback follow; a revision that cannot start takes none', async () => {
    const { cp, store, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    assert.deepEqual(await cp.revisions.deploy(spec('f', { image: 'a' })), {
      outcome: 'created',
      revision: 1,
    });
    assert.equal(await dp.lookup('f'), true, 'a request for it came');
    assert.deepEqual(await cp.revisions.deploy(spec('f', { image: 'a' })), {
      outcome: 'unchanged',
      revision: 1,
    });
    assert.deepEqual(await cp.revisions.deploy(spec('f', { image: 'b' })), {
      outcome: 'updated',
      revision: 2,
    });
    // It had a ready sandbox before it took the traffic.
    assert.ok(worker.created.some((c) => c.spec.name === 'f@2'));
    assert.equal(cp.functions.get('f@2').sandboxes, 1);
    assert.deepEqual(dp.route('f')?.split, [{ function: 'f@2', weight: 100 }]);
    assert.ok(dp.functions().includes('f@2'), 'the revision it splits to came with the split');
    assert.deepEqual(await store.listTraffic(), [
      { name: 'f', split: [{ revision: 2, weight: 100 }] },
    ]);
    assert.equal((await store.getFunction('f@2'))?.image, 'b');
    assert.deepEqual(await cp.revisions.deploy(spec('f', { image: 'b' })), {
      outcome: 'unchanged',
      revision: 2,
    });

    await cp.revisions.setTraffic('f', { '1': 90, '2': 10 });
    assert.deepEqual(dp.route('f')?.split, [
      { function: 'f', weight: 90 },
      { function: 'f@2', weight: 10 },
    ]);
    assert.deepEqual(
      cp.revisions.list('f').map((r) => [r.revision, r.weight]),
      [
        [1, 90],
        [2, 10],
      ],
    );
    await assert.rejects(
      cp.revisions.setTraffic('f', { '1': 50, '2': 40 }),
      /weights must sum to 100/,
    );
    await assert.rejects(cp.revisions.setTraffic('f', { '3': 100 }), /has no revision 3/);
    await cp.revisions.setTraffic('f', { '1': 100 });
    assert.equal(dp.route('f')?.split, undefined, 'all to revision 1: no split');
    // The newest spec deployed again after a rollback serves again.
    assert.deepEqual(await cp.revisions.deploy(spec('f', { image: 'b' })), {
      outcome: 'updated',
      revision: 2,
    });
    assert.deepEqual(dp.route('f')?.split, [{ function: 'f@2', weight: 100 }]);
    await cp.revisions.setTraffic('f', { '1': 100 });

    // A revision whose sandboxes cannot start is removed; traffic stays.
    worker.outcome = (s) =>
      s.image === 'broken'
        ? {
            ok: false,
            code: 'BATON_ERR_SANDBOX_START',
            message: 'exited with code 1',
            retryable: false,
          }
        : { ok: true };
    await assert.rejects(
      cp.revisions.deploy(spec('f', { image: 'broken' })),
      /revision 3 of f cannot start: .*exited with code 1; traffic stays/,
    );
    assert.equal(await store.getFunction('f@3'), undefined);
    assert.equal(dp.route('f')?.split, undefined);
    await assert.rejects(cp.deleteFunction('f@2', 0), /is a revision: delete the function "f"/);
    await cp.deleteFunction('f', 0);
    assert.deepEqual(await store.listFunctions(), []);
    assert.deepEqual(await store.listTraffic(), []);
  });

  it('gives a sandbox the secrets its spec names, in its creation only; refuses a missing secret and the deletion of a used one', async () => {
    const { cp, store, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    await assert.rejects(
      cp.registerFunction(spec('s', { secrets: ['TOKEN'], minScale: 1 })),
      (err: Error) =>
        err instanceof InvalidArgumentError && /secrets: no secret named TOKEN/.test(err.message),
    );
    assert.equal(await store.getFunction('s'), undefined);
    assert.equal(await cp.secrets.set('TOKEN', 'v1'), 'created');
    assert.equal(await cp.secrets.set('TOKEN', 'v2'), 'updated');
    await assert.rejects(cp.secrets.set('bad-name', 'x'), InvalidArgumentError);
    assert.equal(
      await cp.registerFunction(spec('s', { secrets: ['TOKEN'], minScale: 1 })),
      'created',
    );
    await until('a sandbox made', () => worker.created.length === 1);
    assert.deepEqual(worker.created[0]!.secretEnv, { TOKEN: 'v2' });
    assert.deepEqual(worker.created[0]!.spec.env, {}, 'not in the spec');
    assert.ok(
      !JSON.stringify(await store.getFunction('s')).includes('v2'),
      'not in the stored spec',
    );
    assert.deepEqual(
      cp.secrets.list().map((x) => [x.name, x.usedBy]),
      [['TOKEN', ['s']]],
    );
    await assert.rejects(cp.secrets.delete('TOKEN'), ConflictError);
    await cp.deleteFunction('s', 0);
    await cp.secrets.delete('TOKEN');
    assert.deepEqual(await store.listSecrets(), []);
  });

  it('refuses a secret that is also an env variable, or named twice', () => {
    assert.throws(
      () => spec('e', { env: { A: '1' }, secrets: ['A'] }),
      /secrets: A is also set in env/,
    );
    assert.throws(() => spec('e', { secrets: ['A', 'A'] }), /must not name a secret twice/);
  });

  it('registers a function durably; data planes get it soon after, when they ask, or at once if just told it did not exist; same spec is a no-op, another is a conflict', async () => {
    const { cp, store, transport, port } = await startCp();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    const denied = new FakeDataPlane(transport, port, 'dp-2');
    await dp.register();
    await denied.register();
    assert.equal(await denied.lookup('f'), false, 'not registered yet');
    assert.equal(await cp.registerFunction(spec('f')), 'created');
    assert.equal((await store.getFunction('f'))?.name, 'f');
    assert.deepEqual(
      denied.functions(),
      ['f'],
      'answered once the data plane that was told no has it',
    );
    await until('the other data plane to get it unasked', () => dp.functions().includes('f'));
    assert.equal(await dp.lookup('f'), true);
    await cp.registerFunction(spec('h'));
    assert.equal(await dp.lookup('h'), true, 'asked before it was sent');
    assert.ok(dp.functions().includes('h'), 'pushed before the lookup is answered');
    assert.equal(await dp.lookup('g'), false);
    assert.equal(await cp.registerFunction(spec('f')), 'unchanged');
    await assert.rejects(cp.registerFunction(spec('f', { concurrency: 3 })), ConflictError);
  });

  it("refuses a function whose image no worker's runtime can run, storing nothing", async () => {
    const { cp, store, transport, port } = await startCp();
    // No worker yet: nothing can check it, so it is taken.
    assert.equal(await cp.registerFunction(spec('early', { image: '/no/such/a' })), 'created');
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    await assert.rejects(
      cp.registerFunction(spec('bad', { image: '/no/such/b' })),
      (err: unknown) =>
        err instanceof InvalidArgumentError &&
        err.field === 'image' &&
        err.message === 'image: image path /no/such/b does not exist',
    );
    assert.equal(await store.getFunction('bad'), undefined);
    assert.equal(await cp.registerFunction(spec('good', { image: '/srv/fn' })), 'created');
    assert.deepEqual(worker.checked, ['/no/such/b', '/srv/fn']);
  });

  it('takes one of two registrations of a new name racing through the image check, refusing the other', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    const outcomes = await Promise.allSettled([
      cp.registerFunction(spec('race', { image: '/srv/a' })),
      cp.registerFunction(spec('race', { image: '/srv/b' })),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'rejected'],
    );
    assert.ok((outcomes[1] as PromiseRejectedResult).reason instanceof ConflictError);
    assert.equal(cp.functions.get('race').spec.image, '/srv/a');
  });

  it('scales a function from zero on a data plane report and announces the sandbox', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('f'));
    await dp.report('f', 1, 1);
    await until('a sandbox to be announced', () => dp.endpoints('f').length === 1);
    assert.equal(worker.created.length, 1, 'one creation for one queued request');
    assert.equal(cp.functions.get('f').sandboxes, 1);
  });

  it('adds nothing for a queue while its sandboxes are being made, then at most doubles', async () => {
    // No tick within the test: what is made comes from the reports alone.
    const transport = new InProcessTransport();
    const cp = await launchCp(new MemoryStore(memoryBacking()), transport, 60_000);
    await cp.whenReady();
    const port = cp.rpcAddress.port;
    const worker = new FakeWorker(transport, port, 'w-1');
    let release = () => {};
    worker.gate = new Promise<void>((r) => (release = r));
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('f'));
    await dp.report('f', 1, 1);
    await until('the first creation', () => worker.created.length === 1);
    // 2000 requests/s wait behind a 40 ms creation: about 80 queued.
    await dp.report('f', 80, 80);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(worker.created.length, 1, 'the queue behind a creation made no more');
    worker.gate = undefined;
    release();
    await until('the first sandbox ready', () => cp.functions.get('f').sandboxes === 1);
    await dp.report('f', 81, 80);
    await until('a second creation', () => worker.created.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(worker.created.length, 2, 'doubled, not one per queued request');
  });

  it('charges each sandbox the worker floor, and places more once a worker with room joins', async () => {
    const { cp, transport, port } = await startCp();
    const small = new FakeWorker(transport, port, 'w-small', {
      cpuCapacityMilli: 100,
      sandboxFloor: { cpuMilli: 25, memoryMib: 128 },
    });
    await small.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('f', { minScale: 6 }));
    await until('four sandboxes (the floor admits four)', () => small.created.length === 4);
    const f = cp.functions.get('f');
    assert.equal(f.lastFailure?.code, 'BATON_ERR_NO_CAPACITY');
    assert.match(f.lastFailure.message, /takes at least 25 mCPU and 128 MiB on w-small/);
    const big = new FakeWorker(transport, port, 'w-big');
    await big.register();
    await until('the other two on the new worker', () => big.created.length === 2);
  });

  it('reclaims idle sandboxes of other functions, least recently active first, when no worker has room', async () => {
    const { cp, transport, port } = await startCp();
    // Room for four sandboxes of 100 mCPU.
    const worker = new FakeWorker(transport, port, 'w-1', { cpuCapacityMilli: 400 });
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    const sweep = { cpuMilli: 100, coldStartSweep: true };
    await cp.registerFunction(spec('kept', { cpuMilli: 100, minScale: 1 }));
    for (const name of ['old', 'busy', 'recent']) {
      await cp.registerFunction(spec(name, sweep));
      await dp.report(name, 1, 1);
      await until(`a sandbox of ${name}`, () => cp.functions.get(name).sandboxes === 1);
      await sleep(120); // busy for a few ticks: the autoscaler's window remembers it
    }
    for (const name of ['old', 'recent']) await dp.report(name, 0, 0);
    const createdOf = (name: string) => worker.created.filter((c) => c.spec.name === name).length;

    // Full: the new function's sandbox takes the place of the least recently active idle one.
    await cp.registerFunction(spec('new', sweep));
    await dp.report('new', 1, 1);
    await until("new's sandbox", () => createdOf('new') === 1);
    assert.equal(cp.functions.get('old').sandboxes, 0);
    // Its room was given back at once; the worker deletes it once the data plane let go.
    await until("old's sandbox deleted", () => worker.deleted.length === 1);
    // Then the other idle one; never the busy one, nor one a minimum scale keeps.
    await cp.registerFunction(spec('newer', sweep));
    await dp.report('newer', 1, 1);
    await until("newer's sandbox", () => createdOf('newer') === 1);
    assert.equal(cp.functions.get('recent').sandboxes, 0);
    for (const name of ['kept', 'busy', 'new', 'newer'])
      assert.equal(cp.functions.get(name).sandboxes, 1, name);
    await cp.registerFunction(spec('last', sweep));
    await dp.report('last', 1, 1);
    await until('no room, nothing idle', () => cp.functions.get('last').lastFailure !== null);
    assert.equal(cp.functions.get('last').lastFailure?.code, 'BATON_ERR_NO_CAPACITY');
    // The reclaimed functions want nothing until their next request (ticks every 50 ms).
    await sleep(300);
    for (const name of ['old', 'recent']) {
      assert.equal(cp.functions.get(name).desired, 0, name);
      assert.equal(createdOf(name), 1, name);
    }
    assert.equal(cp.metrics().sandboxesReclaimed, 2);
    // The reclaimed sandboxes' room was given back once, when they were taken.
    assert.equal((await cp.status()).workers[0]?.allocated.cpuMilli, 400);
  });

  /**
   * A control plane whose clock runs with the system's, moved ahead by hand
   * (`ahead`), with one worker (`workerOptions`) and one data plane.
   */
  async function startAhead(workerOptions: ConstructorParameters<typeof FakeWorker>[3] = {}) {
    let movedBy = 0;
    const clock = { now: () => systemClock.now() + movedBy };
    const transport = new InProcessTransport();
    const cp = await launchCp(new MemoryStore(memoryBacking()), transport, 50, clock);
    await cp.whenReady();
    const port = cp.rpcAddress.port;
    const worker = new FakeWorker(transport, port, 'w-1', workerOptions);
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    return { cp, dp, ahead: (ms: number) => (movedBy += ms) };
  }

  it('keeps the sandbox of a function whose reports show requests answered but none in flight', async () => {
    const { cp, dp, ahead } = await startAhead();
    // A 6 s stable window; short requests every 4 s, never in flight at a report.
    await cp.registerFunction(spec('sparse', { coldStartSweep: true }));
    await dp.report('sparse', 1, 1);
    await until('a sandbox', () => cp.functions.get('sparse').sandboxes === 1);
    await dp.report('sparse', 0, 0, 1);
    for (const answered of [2, 3]) {
      const movedBy = ahead(4000);
      await dp.report('sparse', 0, 0, answered);
      await sleep(150);
      assert.equal(cp.functions.get('sparse').sandboxes, 1, `${movedBy} ms on`);
    }
    // Then quiet for a whole stable window: scaled to zero.
    ahead(7000);
    await until('scaled to zero', () => cp.functions.get('sparse').sandboxes === 0);
  });

  it('takes no sandbox for a scale-up from a function seen active in the last 5 s, though it reports none in flight', async () => {
    // Room for four sandboxes of 100 mCPU: two kept by a minimum scale, one each of two functions.
    const { cp, dp, ahead } = await startAhead({ cpuCapacityMilli: 400 });
    await cp.registerFunction(spec('kept', { cpuMilli: 100, minScale: 2 }));
    for (const name of ['steady', 'grow']) {
      await cp.registerFunction(spec(name, { cpuMilli: 100, concurrency: 1 }));
      await dp.report(name, 1, 1);
      await until(`a sandbox of ${name}`, () => cp.functions.get(name).sandboxes === 1);
    }
    // Short requests: none in flight at its reports, but answered between them.
    await dp.report('steady', 0, 0, 10);
    const grows = async (why: string) => {
      await dp.report('grow', 40, 39);
      await sleep(150);
      assert.equal(cp.functions.get('steady').sandboxes, 1, why);
      assert.equal(cp.functions.get('grow').lastFailure?.code, 'BATON_ERR_NO_CAPACITY', why);
    };
    await grows('just active');
    ahead(3000);
    await dp.report('steady', 0, 0, 25);
    ahead(3000);
    await grows('answered requests 3 s ago');
    ahead(3000);
    await dp.report('grow', 40, 39);
    await until("steady's sandbox taken", () => cp.functions.get('steady').sandboxes === 0);
    assert.equal(cp.metrics().sandboxesReclaimed, 1);
  });

  for (const idleHoldsNothing of [false, true])
    it(`makes a sandbox in a reclaimed one's room ${idleHoldsNothing ? 'while it drains where idle sandboxes hold nothing' : 'only once it is deleted'}`, async () => {
      const { cp, transport, port } = await startCp();
      const worker = new FakeWorker(transport, port, 'w-1', {
        cpuCapacityMilli: 100,
        capabilities: { ...NO_CAPABILITIES, idleHoldsNothing },
      });
      await worker.register();
      const dp = new FakeDataPlane(transport, port, 'dp-1');
      await dp.register();
      const sweep = { cpuMilli: 100, coldStartSweep: true };
      await cp.registerFunction(spec('old', sweep));
      await dp.report('old', 1, 1);
      await until("old's sandbox", () => cp.functions.get('old').sandboxes === 1);
      await dp.report('old', 0, 0);
      let letGo = (): void => undefined;
      dp.drainGate = new Promise((r) => (letGo = r));
      await cp.registerFunction(spec('new', sweep));
      await dp.report('new', 1, 1);
      await until('the drain of the reclaimed sandbox', () => dp.drains.length === 1);
      const createdOfNew = () => worker.created.filter((c) => c.spec.name === 'new').length;
      const status = async () => (await cp.status()).workers[0]!;
      try {
        if (idleHoldsNothing)
          await until("new's sandbox while old's drains", () => createdOfNew() === 1);
        else {
          await sleep(100);
          assert.equal(createdOfNew(), 0, 'no creation while the worker still holds the room');
          assert.equal((await status()).sandboxes, 1);
        }
        assert.equal(worker.deleted.length, 0);
        assert.equal((await status()).allocated.cpuMilli, 100, 'the room was given at once');
      } finally {
        letGo();
      }
      await until(
        "old's sandbox deleted and new's made",
        () => worker.deleted.length === 1 && createdOfNew() === 1,
      );
      assert.deepEqual(worker.deleted, dp.drains[0]);
      assert.equal((await status()).sandboxes, 1);
    });

  it('drains the sandboxes reclaimed in a short while in one call', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1', { cpuCapacityMilli: 200 });
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    const sweep = { cpuMilli: 100, coldStartSweep: true };
    for (const name of ['a', 'b', 'c', 'd']) await cp.registerFunction(spec(name, sweep));
    for (const name of ['a', 'b']) {
      await dp.report(name, 1, 1);
      await until(`a sandbox of ${name}`, () => cp.functions.get(name).sandboxes === 1);
      await dp.report(name, 0, 0);
    }
    // Two cold starts a few milliseconds apart (not in one event-loop turn),
    // each taking an idle sandbox's place.
    await dp.report('c', 1, 1);
    await sleep(1);
    await dp.report('d', 1, 1);
    await until('both deleted', () => worker.deleted.length === 2);
    assert.equal(cp.metrics().sandboxesReclaimed, 2);
    assert.deepEqual(
      dp.drains.map((ids) => ids.length),
      [2],
    );
    assert.deepEqual(worker.deleted.toSorted(), dp.drains[0]!.toSorted());
  });

  it('fails queued requests with the reason when a sandbox cannot start, and backs off', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    worker.outcome = () => ({
      ok: false,
      code: 'BATON_ERR_SANDBOX_START',
      message: 'image path /nope does not exist',
      retryable: false,
    });
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('bad'));
    await dp.report('bad', 1, 1);
    await until('the queue to be failed', () =>
      dp.updates.some((u) => u.failQueued?.some((f) => f.function === 'bad') === true),
    );
    assert.equal(cp.functions.get('bad').lastFailure?.message, 'image path /nope does not exist');
    await sleep(300);
    assert.equal(worker.created.length, 1, 'no second attempt within the back-off');
  });

  it('answers a registration once its minimum scale is ready and routed, not before', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    let open: () => void = () => undefined;
    worker.gate = new Promise((r) => (open = r));
    let answered = false;
    const registered = cp.registerFunction(spec('f', { minScale: 2 })).then(() => {
      answered = true;
    });
    await until('both sandboxes asked for', () => worker.created.length === 2);
    await sleep(50);
    assert.equal(answered, false, 'not while its sandboxes are being made');
    open();
    await registered;
    assert.equal(await dp.lookup('f'), true);
    assert.equal(dp.endpoints('f').length, 2, 'the data plane routes to them');
    // One that cannot be made does not hold the answer up: the status says why.
    worker.gate = undefined;
    worker.outcome = () => ({
      ok: false,
      code: 'BATON_ERR_SANDBOX_START',
      message: 'image broken',
      retryable: false,
    });
    const t0 = performance.now();
    await cp.registerFunction(spec('g', { minScale: 1 }));
    assert.ok(performance.now() - t0 < 1000, 'answered once the creation failed');
    assert.match(cp.functions.get('g').lastFailure?.message ?? '', /image broken/);
  });

  it('replaces a sandbox its worker reports dead, keeping the reason', async () => {
    const { cp, transport, port } = await startCp();
    const worker = new FakeWorker(transport, port, 'w-1');
    await worker.register();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('f', { minScale: 1 }));
    await dp.lookup('f');
    await until('the sandbox', () => dp.endpoints('f').length === 1);
    const [first] = dp.endpoints('f');
    await worker.fail(first!, 'killed by the OOM killer: over its memory limit of 128 MiB');
    await until('its replacement', () => dp.endpoints('f').some((id) => id !== first));
    assert.ok(
      dp.updates.some((u) => u.endReasons?.some((r) => r.id === first && /OOM/.test(r.reason))),
      'the data plane is told how it ended',
    );
    assert.equal(cp.functions.get('f').lastFailure?.code, 'BATON_ERR_SANDBOX_EXITED');
  });

  it('refuses registration and deletion while the store is down and changes nothing', async () => {
    const { cp, store, transport, port } = await startCp();
    const dp = new FakeDataPlane(transport, port, 'dp-1');
    await dp.register();
    await cp.registerFunction(spec('kept'));
    await dp.lookup('kept');
    store.fail(new Error('disk on fire'));
    await assert.rejects(cp.registerFunction(spec('new')), StoreError);
    assert.equal(await dp.lookup('new'), false);
    assert.deepEqual(dp.functions(), ['kept']);
    await assert.rejects(cp.deleteFunction('kept'), StoreError);
    assert.deepEqual(
      cp.functions.list().map((f) => f.spec.name),
      ['kept'],
    );
    assert.equal(cp.storeStatus.ok, false);
    store.fail();
    assert.equal(await cp.registerFunction(spec('new')), 'created');
    assert.deepEqual(await cp.deleteFunction('kept'), { remaining: 0 });
    assert.equal(cp.storeStatus.ok, true);
  });

  it('after a restart adopts what workers run, without making a second set', async () => {
    const backing = memoryBacking();
    const transport = new InProcessTransport();
    const first = await startCp(backing, transport);
    const worker = new FakeWorker(transport, first.port, 'w-1');
    await worker.register();
    await first.cp.registerFunction(spec('f', { minScale: 2 }));
    await until('two sandboxes', () => worker.sandboxes.size === 2);
    await first.cp.close();
    const second = await startCp(backing, transport);
    await until(
      'the stored worker to be asked',
      () => second.cp.functions.get('f').sandboxes === 2,
    );
    await sleep(200);
    assert.equal(worker.created.length, 2, 'no sandbox made again');
    assert.deepEqual(
      (await second.cp.status()).workers.map((w) => w.id),
      ['w-1'],
    );
  });

  it('waits for its store at start, and is ready once the store answers', async () => {
    const store = new MemoryStore(memoryBacking());
    store.fail(new Error('not up yet'));
    const cp = await launchCp(store, new InProcessTransport());
    assert.equal(cp.ready, false);
    store.fail();
    await cp.whenReady();
    assert.equal(cp.ready, true);
  });
});

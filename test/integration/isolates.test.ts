/**
 * Isolate runtimes through a whole cluster (`baton up`): every function keeps
 * one (standby) endpoint from registration on, never scaled away. Per
 * request, every request is a fresh isolate marked cold; pooled, the first
 * request makes the isolate (marked cold) and later ones share it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, pidsListeningOn, startUp, type BatonUp } from '../helpers/processes.js';
import {
  dirigentFields,
  getFunction,
  invoke,
  putFunction,
  registerForm,
  waitUntil,
} from '../helpers/baton-client.js';
import { isolatesUnsupported } from '../helpers/isolates.js';
import { writeTypedModules } from '../helpers/specs.js';

/** Counts the requests its isolate has served: "1" from a fresh isolate every time. */
const COUNTER = `let served = 0;
export default async function counter(request: Request): Promise<Response> {
  served++;
  const wait = Number(new URL(request.url).searchParams.get('wait') ?? 0);
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  return new Response(String(served));
}
`;

/** Waits until each function has its one standby endpoint (made at registration). */
async function standbyReady(b: BatonUp, ...names: string[]): Promise<void> {
  await waitUntil(
    `the standby endpoint of ${names.join(', ')}`,
    async () => {
      const fns = await Promise.all(names.map((n) => getFunction(b.registration, n)));
      return fns.every((f) => f?.sandboxes === 1);
    },
    10_000,
  );
}

/**
 * Registers functions requesting more CPU than any worker has (an ordinary
 * sandbox of them could not be placed) and waits for their standby endpoints.
 */
async function registerHuge(b: BatonUp, file: string, ...names: string[]): Promise<void> {
  for (const name of names) {
    const reg = await registerForm(
      b.registration,
      dirigentFields(name, file, { requested_cpu: String(1_000_000) }),
    );
    assert.equal(reg.status, 200, reg.text);
  }
  await standbyReady(b, ...names);
}

describe('isolate runtimes in a cluster', { skip: isolatesUnsupported }, () => {
  let dir: string;
  let counter: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-isolates-'));
    counter = join(dir, 'counter.ts');
    writeFileSync(counter, COUNTER);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('isolate-per-request', () => {
    let b: BatonUp;
    before(async () => {
      b = await startUp(['--runtime', 'isolate-per-request', '--workers', '1']);
    });
    after(() => b.stop());

    it('keeps one endpoint per function from registration on; every request is a fresh isolate, marked cold', async () => {
      const reg = await registerForm(
        b.registration,
        dirigentFields('fresh', counter, {
          cold_start_sweep: 'true',
          scaling_upper_bound: '1',
          container_concurrency: '1',
        }),
      );
      assert.equal(reg.status, 200, reg.text);
      // No invocation yet: the endpoint is made at registration.
      await standbyReady(b, 'fresh');
      for (let i = 0; i < 3; i++) {
        const r = await invoke(b.proxy, 'fresh');
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, '1', 'each request runs in an isolate that served nothing before');
        assert.equal(r.headers['x-baton-start'], 'cold');
        assert.equal(r.headers['content-length'], '1');
      }
      // Concurrency is per sandbox, and each request has its own: none waits for another.
      const together = await Promise.all(
        Array.from({ length: 6 }, () => invoke(b.proxy, 'fresh', {}, '/?wait=200')),
      );
      for (const r of together) {
        assert.deepEqual([r.status, r.text], [200, '1'], r.text);
        assert.equal(r.headers['x-baton-start'], 'cold');
        assert.equal(r.headers['x-baton-queued-ms'], undefined, 'dispatched without queueing');
      }
      // The sweep preset's stable window is 6 s: an idle function would be at zero by now.
      await new Promise((resolve) => setTimeout(resolve, 9_000));
      const info = await getFunction(b.registration, 'fresh');
      assert.equal(info?.sandboxes, 1, 'the endpoint is not scaled away');
      assert.equal(info?.sandboxesCreated, 1);
    });
  });

  describe('isolate (pooled)', () => {
    let b: BatonUp;
    before(async () => {
      b = await startUp(['--runtime', 'isolate', '--workers', '1', '--isolate-idle-ms', '1000']);
    });
    after(() => b.stop());

    it('runs a TypeScript module with types from outside Baton, and the example unchanged; refuses one that does not compile', async () => {
      const images = writeTypedModules(dir);
      for (const [name, image] of [
        ['iso-typed', images.typed],
        ['iso-hello-ts', images.helloTs],
      ] as const)
        assert.equal((await putFunction(b.registration, name, { image })).status, 201, name);
      const typed = await invoke(b.proxy, 'iso-typed', {}, '/x');
      assert.equal(typed.status, 200, typed.text);
      assert.equal(typed.text, 'typed /x');
      const hello = await invoke(b.proxy, 'iso-hello-ts', {}, '/?name=Ada');
      assert.equal(hello.status, 200, hello.text);
      assert.equal((JSON.parse(hello.text) as { greeting: string }).greeting, 'Hello, Ada!');
      writeFileSync(join(dir, 'broken.ts'), 'export default (r: Request) => new Response(;\n');
      const broken = await putFunction(b.registration, 'iso-broken', {
        image: join(dir, 'broken.ts'),
      });
      assert.equal(broken.status, 400, broken.text);
      assert.match(broken.text, /image: cannot bundle handler: \S+broken\.ts:1:\d+: /);
    });

    it('keeps a standby endpoint; its first request makes the isolate, later ones share it', async () => {
      const reg = await registerForm(
        b.registration,
        dirigentFields('pooled', counter, { container_concurrency: '1' }),
      );
      assert.equal(reg.status, 200, reg.text);
      await standbyReady(b, 'pooled');
      const first = await invoke(b.proxy, 'pooled');
      assert.equal(first.status, 200, first.text);
      assert.deepEqual([first.text, first.headers['x-baton-start']], ['1', 'cold']);
      assert.equal(first.headers['x-baton-queued-ms'], undefined, 'it did not wait for a sandbox');
      const second = await invoke(b.proxy, 'pooled');
      assert.deepEqual(
        [second.text, second.headers['x-baton-start']],
        ['2', 'warm'],
        'the same isolate served again',
      );
      // A burst beyond the standby's one slot scales out as usual.
      const burst = await Promise.all(
        Array.from({ length: 4 }, () => invoke(b.proxy, 'pooled', {}, '/?wait=300')),
      );
      for (const r of burst) assert.equal(r.status, 200, r.text);
      const info = await getFunction(b.registration, 'pooled');
      assert.ok((info?.sandboxesCreated ?? 0) > 1, `created ${info?.sandboxesCreated}`);
    });

    it('places standby sandboxes without taking capacity', async () => {
      await registerHuge(b, counter, 'big-1', 'big-2');
      for (const name of ['big-1', 'big-2']) {
        const r = await invoke(b.proxy, name);
        assert.deepEqual([r.status, r.text, r.headers['x-baton-start']], [200, '1', 'cold']);
      }
    });

    it('still counts standby sandboxes as taking no capacity once a restarted control plane adopts them', async () => {
      await registerHuge(b, counter, 'kept-1', 'kept-2');
      const before = (await getFunction(b.registration, 'kept-1'))?.sandboxList[0]?.id;
      // baton up restarts its control plane; the worker's sandboxes are adopted.
      const pids = pidsListeningOn(Number(new URL(b.registration).port));
      assert.ok(pids.length > 0 && pids.every(isAlive), 'the control plane serving registration');
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await waitUntil(
        'the restarted control plane to adopt kept-1',
        async () => {
          const list = (await getFunction(b.registration, 'kept-1').catch(() => undefined))
            ?.sandboxList;
          return list?.some((s) => s.id === before) === true;
        },
        20_000,
      );
      // Adopted, not doubled: the floor waits for the worker's own list.
      assert.deepEqual(
        (await getFunction(b.registration, 'kept-1'))?.sandboxList.map((s) => s.id),
        [before],
      );
      // Counted as ordinary, the two would fill the worker for good: no new function could be placed.
      const reg = await registerForm(b.registration, dirigentFields('after-restart', counter));
      assert.equal(reg.status, 200, reg.text);
      await standbyReady(b, 'after-restart');
      for (const name of ['kept-1', 'kept-2', 'after-restart']) {
        const r = await invoke(b.proxy, name);
        assert.equal(r.status, 200, `${name}: ${r.text}`);
      }
    });

    it('gives up a standby isolate after --isolate-idle-ms (passed on by baton up)', async () => {
      const reg = await registerForm(b.registration, dirigentFields('idler', counter));
      assert.equal(reg.status, 200, reg.text);
      await standbyReady(b, 'idler');
      const first = await invoke(b.proxy, 'idler');
      assert.deepEqual([first.text, first.headers['x-baton-start']], ['1', 'cold']);
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const later = await invoke(b.proxy, 'idler');
      assert.deepEqual(
        [later.text, later.headers['x-baton-start']],
        ['1', 'cold'],
        'a new isolate, its module state new',
      );
      assert.equal((await getFunction(b.registration, 'idler'))?.sandboxesCreated, 1);
    });
  });
});

/**
 * `baton up --runtime simulated` runs its simulated workers 25 to a process;
 * each is still a worker of its own (id, RPC port, registration) and
 * placement spreads sandboxes over them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { isAlive, startUp, type BatonUp } from '../helpers/processes.js';
import { dirigentFields, getFunction, invoke, registerForm } from '../helpers/baton-client.js';
import { httpRequest } from '../helpers/http.js';

interface Status {
  workers: Array<{ id: string; address: string; sandboxes: number }>;
}

describe('simulated workers sharing processes', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp(['--runtime', 'simulated', '--workers', '30', '--placement', 'round-robin']);
  });
  after(() => b.stop());

  it('registers every worker separately and places sandboxes on many of them', async () => {
    const status = JSON.parse((await httpRequest(`${b.registration}/v1/status`)).text) as Status;
    assert.equal(status.workers.length, 30);
    assert.equal(new Set(status.workers.map((w) => w.id)).size, 30);
    assert.equal(new Set(status.workers.map((w) => w.address)).size, 30);
    const pids = (b.up.ready.addresses as { pids: number[] }).pids;
    // control plane, data plane, and two worker processes (25 + 5)
    assert.equal(pids.length, 4);
    assert.ok(pids.every(isAlive));

    const names = Array.from({ length: 12 }, (_, i) => `spread-${i}`);
    for (const n of names) {
      const r = await registerForm(b.registration, dirigentFields(n, 'empty'));
      assert.equal(r.status, 200, r.text);
    }
    const replies = await Promise.all(names.map((n) => invoke(b.proxy, n, { workload: 'empty' })));
    assert.deepEqual(
      replies.map((r) => r.status),
      names.map(() => 200),
    );
    const placedOn = new Set<string>();
    for (const n of names) {
      const f = await getFunction(b.registration, n);
      for (const s of f?.sandboxList ?? []) placedOn.add(s.worker);
    }
    assert.ok(placedOn.size >= 10, `sandboxes on only ${placedOn.size} workers`);
  });
});

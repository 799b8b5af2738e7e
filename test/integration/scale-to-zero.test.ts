/** The sweep preset scales to zero after its 6 s stable window; the next invocation is cold again. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUp, type BatonUp } from '../helpers/processes.js';
import {
  dirigentFields,
  getFunction,
  invoke,
  registerForm,
  waitUntil,
} from '../helpers/baton-client.js';

describe('scale to zero (simulated runtime, sweep preset)', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp(['--runtime', 'simulated', '--workers', '3']);
  });
  after(() => b.stop());

  it('scales a sweep-preset function to zero once its window is quiet, then cold-starts again', async () => {
    const reg = await registerForm(
      b.registration,
      dirigentFields('sweep-fn', 'trace', { cold_start_sweep: 'true', scaling_upper_bound: '1' }),
    );
    assert.equal(reg.status, 200, reg.text);
    const headers = { workload: 'trace', requested_cpu: '20', requested_memory: '1' };
    const t0 = Date.now();
    const first = await invoke(b.proxy, 'sweep-fn', headers);
    assert.equal(first.status, 200, first.text);
    assert.ok((JSON.parse(first.text) as { ExecutionTime: number }).ExecutionTime >= 20_000);
    assert.equal((await getFunction(b.registration, 'sweep-fn'))?.sandboxes, 1);
    await waitUntil(
      'scale to zero',
      async () => (await getFunction(b.registration, 'sweep-fn'))?.sandboxes === 0,
      20_000,
      200,
    );
    const quietMs = Date.now() - t0;
    assert.ok(quietMs >= 6_000, `scaled to zero after ${quietMs} ms, before the 6 s stable window`);
    const second = await invoke(b.proxy, 'sweep-fn', headers);
    assert.equal(second.status, 200);
    assert.equal(
      (await getFunction(b.registration, 'sweep-fn'))?.sandboxesCreated,
      2,
      'the second invocation was a cold start',
    );
  });

  it('never runs more than one sandbox of a sweep-preset function given no upper bound', async () => {
    // The preset's bound is 1; a form's scaling_upper_bound would override it, as in Dirigent.
    const { scaling_upper_bound: _, ...fields } = dirigentFields('sweep-burst', 'trace', {
      cold_start_sweep: 'true',
    });
    await registerForm(b.registration, fields);
    const res = await Promise.all(
      Array.from({ length: 20 }, () =>
        invoke(b.proxy, 'sweep-burst', { workload: 'trace', requested_cpu: '50' }),
      ),
    );
    assert.deepEqual(
      res.map((r) => r.status),
      res.map(() => 200),
    );
    const info = await getFunction(b.registration, 'sweep-burst');
    assert.equal(info?.sandboxesCreated, 1);
  });
});

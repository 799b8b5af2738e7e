/** Registrations survive a restart of `baton up` (embedded store in the data dir). */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startUp, tempDir } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { dirigentFields, invoke, registerForm, putFunction } from '../helpers/baton-client.js';

describe('restarting baton up', () => {
  const dir = tempDir('baton-restart-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps registrations and serves them after the restart', async () => {
    const first = await startUp([], dir);
    try {
      assert.equal(
        (await registerForm(first.registration, dirigentFields('kept-form', 'hello'))).status,
        200,
      );
      const put = await putFunction(first.registration, 'kept-json', {
        image: 'empty',
        maxScale: 3,
        env: { A: 'b' },
      });
      assert.equal(put.status, 201);
      assert.equal((await invoke(first.proxy, 'kept-form')).status, 200);
    } finally {
      await first.stop();
    }
    const second = await startUp([], dir);
    try {
      const list = JSON.parse((await httpRequest(`${second.registration}/v1/functions`)).text) as {
        functions: Array<{
          spec: { name: string; maxScale: number | null; env: Record<string, string> };
          sandboxes: number;
        }>;
      };
      const byName = new Map(list.functions.map((f) => [f.spec.name, f]));
      assert.ok(byName.has('kept-form'));
      assert.equal(byName.get('kept-json')?.spec.maxScale, 3);
      assert.deepEqual(byName.get('kept-json')?.spec.env, { A: 'b' });
      const res = await invoke(second.proxy, 'kept-form');
      assert.equal(res.status, 200);
      assert.match(res.text, /^Hello from kept-form/);
      // The same registration again is still idempotent after the restart.
      assert.equal(
        (await registerForm(second.registration, dirigentFields('kept-form', 'hello'))).status,
        200,
      );
    } finally {
      await second.stop();
    }
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  containerUsers,
  userRangeOf,
} from '../../../src/worker/runtimes/containerd/container-users.js';

describe('container users', () => {
  it("gives each worker a range of its own above the process runtime's, the same after a restart", () => {
    const a = userRangeOf('10.0.0.1:30000-30999');
    assert.deepEqual(a, userRangeOf('10.0.0.1:30000-30999'));
    assert.notEqual(a.first, userRangeOf('10.0.0.2:30000-30999').first);
    for (const id of ['a', 'b', 'c', 'host:1-2']) {
      const r = userRangeOf(id);
      assert.equal(r.size, 65_536);
      assert.equal((r.first - 2_100_000_000) % 65_536, 0);
      assert.ok(r.first >= 2_100_000_000 && r.first + r.size - 1 < 2 ** 32 - 1);
    }
  });

  it('remaps with runc where asked, and says why not otherwise', () => {
    assert.match(
      containerUsers('image', 'runc', 'w').note,
      /the image's user \(--container-user image/,
    );
    const gvisor = containerUsers('remapped', 'runsc', 'w');
    assert.equal(gvisor.range, undefined);
    assert.match(gvisor.note, /gVisor's own kernel/);
    const runc = containerUsers('remapped', 'runc', 'w');
    if (runc.warning === undefined) {
      assert.deepEqual(runc.range, userRangeOf('w'));
      assert.match(runc.note, /^a user namespace \(its root is host uid \d+/);
    } else assert.match(runc.warning, /^containers run as their image's user: /);
  });
});

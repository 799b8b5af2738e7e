/** The front's plan for HAProxy's server slots: data planes keep their slot, gone ones free it. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { FRONT_SLOTS, emptySlots, planSlots } from '../../src/cli/haproxy.js';

it('gives new data planes free slots, keeps the others where they are and frees the gone', () => {
  const first = planSlots(emptySlots(), ['127.0.0.1:8001', '127.0.0.1:8002']);
  assert.deepEqual(first.commands, [
    'set server dataplanes/dp1 addr 127.0.0.1 port 8001',
    'set server dataplanes/dp1 state ready',
    'set server dataplanes/dp2 addr 127.0.0.1 port 8002',
    'set server dataplanes/dp2 state ready',
  ]);
  assert.deepEqual(planSlots(first.slots, ['127.0.0.1:8002', '127.0.0.1:8001']).commands, []);
  const second = planSlots(first.slots, ['127.0.0.1:8002', '[::1]:8003']);
  assert.deepEqual(second.commands, [
    'set server dataplanes/dp1 state maint',
    'set server dataplanes/dp1 addr ::1 port 8003',
    'set server dataplanes/dp1 state ready',
  ]);
  assert.equal(second.slots[1]!.address, '127.0.0.1:8002');
});

it('takes no more data planes than it has slots', () => {
  const many = Array.from({ length: FRONT_SLOTS + 3 }, (_, i) => `10.0.0.1:${9000 + i}`);
  const plan = planSlots(emptySlots(), many);
  assert.equal(plan.slots.filter((s) => s.address !== undefined).length, FRONT_SLOTS);
});

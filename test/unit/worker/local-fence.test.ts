/** The local network fence's iptables rules: what they match, in what order. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fenceRules } from '../../../src/worker/runtimes/process/isolation/local-fence.js';

describe('local network fence rules', () => {
  it('accept the allowed ports first, then reject every new connection of the uid range to this host', () => {
    const rules = fenceRules(2_000_020_000, 2_000_029_999, [53, 8080]).map((r) => r.join(' '));
    assert.equal(rules.length, 3);
    for (const r of rules) {
      assert.match(r, /^-o lo -m owner --uid-owner 2000020000-2000029999 /);
      assert.match(r, / -m conntrack --ctstate NEW /, 'replies to connections others opened pass');
      assert.match(r, / --comment baton sandboxes 2000020000-2000029999 /);
    }
    assert.match(rules[0]!, / -p tcp -m multiport --dports 53,8080 .* -j ACCEPT$/);
    assert.match(rules[1]!, / -p udp -m multiport --dports 53,8080 .* -j ACCEPT$/);
    assert.match(rules[2]!, / -j REJECT$/);
    assert.doesNotMatch(rules[2]!, /--dports/);
  });
});

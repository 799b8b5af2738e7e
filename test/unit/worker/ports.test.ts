import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePortRange, splitPortRange } from '../../../src/worker/ports.js';

describe('--port-range', () => {
  it('parses FIRST-LAST and refuses anything else, naming the option', () => {
    assert.deepEqual(parsePortRange(' 20000-20009 '), { first: 20000, last: 20009 });
    assert.throws(() => parsePortRange('20000'), /--port-range: "20000" is not FIRST-LAST$/);
    assert.throws(
      () => parsePortRange('30000-20000'),
      /--port-range: 30000-20000 is not a valid port range/,
    );
    assert.throws(() => parsePortRange('0-10'), /is not a valid port range/);
    assert.throws(() => parsePortRange('60000-70000'), /is not a valid port range/);
  });

  it('splits into equal consecutive shares, the remainder unused', () => {
    assert.deepEqual(splitPortRange('20000-20009', 3, '--workers'), [
      '20000-20002',
      '20003-20005',
      '20006-20008',
    ]);
    assert.deepEqual(splitPortRange('20000-20000', 1, '--workers'), ['20000-20000']);
    assert.throws(
      () => splitPortRange('20000-20001', 3, '--count'),
      /--port-range: 20000-20001 has fewer ports than --count/,
    );
  });
});

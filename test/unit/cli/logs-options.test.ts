/** `baton logs`: reading --since and cutting --tail. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lastLinesOf, parseSince } from '../../../src/cli/logs-command.js';
import { InvalidConfigError } from '../../../src/shared/errors.js';

describe('baton logs options', () => {
  const now = Date.parse('2026-11-30T12:00:00Z');

  it('reads --since as a duration back or as a date', () => {
    assert.equal(parseSince('30s', now), now - 30_000);
    assert.equal(parseSince('10m', now), now - 600_000);
    assert.equal(parseSince('1.5h', now), now - 5_400_000);
    assert.equal(parseSince('2d', now), now - 172_800_000);
    assert.equal(parseSince('2026-11-30T11:00:00Z', now), now - 3_600_000);
    assert.throws(() => parseSince('yesterday', now), InvalidConfigError);
    assert.throws(() => parseSince('10 m', now), InvalidConfigError);
  });

  it('keeps the last N lines, a final partial line counting as one', () => {
    assert.equal(lastLinesOf('a\nb\nc\n', 2), 'b\nc\n');
    assert.equal(lastLinesOf('a\nb\nc', 1), 'c\n');
    assert.equal(lastLinesOf('a\n', 5), 'a\n');
    assert.equal(lastLinesOf('', 3), '');
  });
});

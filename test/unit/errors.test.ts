/** The error codes, their HTTP status and retryability, against the table users read (docs/errors.md). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  ERROR_CODES,
  InvalidArgumentError,
  RemoteError,
  SandboxStartError,
  UnavailableError,
  isRetryable,
} from '../../src/shared/errors.js';
import { httpStatusOf } from '../../src/shared/http-status.js';

const DOC = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** The first table's rows: code, HTTP status, retry. */
function documented(): Map<string, { status: number; retry: boolean }> {
  const rows = new Map<string, { status: number; retry: boolean }>();
  for (const m of DOC.matchAll(/^\| `(BATON_ERR_[A-Z_]+)`\s*\|\s*(\d+)\s*\|\s*(yes|no)\s*\|/gm))
    rows.set(m[1]!, { status: Number(m[2]), retry: m[3] === 'yes' });
  return rows;
}

describe('error codes', () => {
  it('docs/errors.md lists every code with its status and retryability, and no other', () => {
    const rows = documented();
    assert.deepEqual([...rows.keys()].sort(), [...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const err = new RemoteError(code, 'x');
      assert.equal(err.code, code);
      assert.deepEqual(
        { status: httpStatusOf(err), retry: err.retryable },
        rows.get(code),
        `${code} in docs/errors.md`,
      );
    }
  });

  it('keeps an unknown remote code and answers it as internal', () => {
    const err = new RemoteError('BATON_ERR_FROM_THE_FUTURE', 'new');
    assert.equal(err.code, 'BATON_ERR_INTERNAL');
    assert.equal(err.remoteCode, 'BATON_ERR_FROM_THE_FUTURE');
    assert.equal(httpStatusOf(err), 500);
  });

  it('says what may be retried: by code, and any error not of Baton', () => {
    assert.equal(isRetryable(new UnavailableError('x')), true);
    assert.equal(isRetryable(new SandboxStartError('x')), false);
    assert.equal(isRetryable(new Error('ENOSPC')), true);
    assert.equal(httpStatusOf(new Error('x')), 500);
  });

  it('names the field of a bad argument apart from its reason', () => {
    const err = new InvalidArgumentError('must be at least 1', { field: 'maxScale' });
    assert.equal(err.message, 'maxScale: must be at least 1');
    assert.equal(err.field, 'maxScale');
    assert.equal(err.reason, 'must be at least 1');
  });
});

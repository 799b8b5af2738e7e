import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileFunctionSpec,
  compileTypedFunctionSpec,
  functionNameSchema,
  INT_BOUNDS,
  type FunctionSpecInput,
} from '../../src/shared/function-spec.js';
import { InvalidArgumentError } from '../../src/shared/errors.js';

/** A spec, or the field and reason it was refused for. */
function outcome(compile: () => unknown): unknown {
  try {
    return { spec: compile() };
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    return { field: err.field, reason: err.reason };
  }
}

const base: FunctionSpecInput = { name: 'fn', image: 'empty', port: 80, protocol: 'tcp' };

/** One fault (or none) each: the two must agree on the spec or on the field and reason. */
const cases: Array<[string, FunctionSpecInput]> = [
  ['the defaults', base],
  [
    'every field',
    {
      ...base,
      cpuMilli: 100,
      memoryMib: 128,
      concurrency: 4,
      minScale: 1,
      maxScale: 3,
      coldStartSweep: true,
      coldStartTimeoutMs: 5000,
      timeoutMs: 1000,
      env: { A: '1', _b: '2' },
      secrets: ['TOKEN'],
      args: ['--x', 'y'],
      asyncAttempts: 2,
      asyncBackoffMs: 0,
    },
  ],
  ['the sweep preset', { ...base, coldStartSweep: true }],
  ['the sweep preset with a bound', { ...base, coldStartSweep: true, maxScale: 1024 }],
  ['no upper bound', { ...base, maxScale: null }],
  ['an empty image', { ...base, image: '' }],
  ['a long image', { ...base, image: 'x'.repeat(4097) }],
  ['the longest image', { ...base, image: 'x'.repeat(4096) }],
  ['no name', { image: 'empty' }],
  ['an empty name', { ...base, name: '' }],
  ['an upper-case name', { ...base, name: 'Fn' }],
  ['a revision name', { ...base, name: 'fn@2' }],
  ['a long name', { ...base, name: 'a'.repeat(254) }],
  ['the longest name', { ...base, name: 'a'.repeat(253) }],
  ['a bad env name', { ...base, env: { '1A': 'x' } }],
  ['a bad secret name', { ...base, secrets: ['OK', '1x'] }],
  ['a secret twice', { ...base, secrets: ['A', 'A'] }],
  ['101 secrets', { ...base, secrets: Array.from({ length: 101 }, (_, i) => `S${i}`) }],
  ['a secret also in env', { ...base, env: { A: '1' }, secrets: ['A'] }],
  ['a floor over the bound', { ...base, minScale: 5, maxScale: 2 }],
];
// Every integer field at and past its bounds, and not an integer.
for (const [field, [min, max]] of Object.entries(INT_BOUNDS)) {
  for (const v of [min - 1, min, max, max + 1, 1.5, 2 ** 60])
    cases.push([`${field} ${v}`, { ...base, [field]: v }]);
}

describe('function specs', () => {
  it('are compiled alike from typed input (the form) and from JSON (zod)', () => {
    let refused = 0;
    for (const [what, input] of cases) {
      const typed = outcome(() => compileTypedFunctionSpec(input));
      assert.deepEqual(
        typed,
        outcome(() => compileFunctionSpec(input)),
        what,
      );
      if (!('spec' in (typed as object))) refused++;
    }
    // Not all alike by accepting everything: most of the cases are faults.
    assert.ok(refused > cases.length / 2, `${refused} of ${cases.length} refused`);
  });

  it('takes each integer at its bounds and refuses it past them', () => {
    for (const [field, [min, max]] of Object.entries(INT_BOUNDS)) {
      const at = (v: number) => outcome(() => compileTypedFunctionSpec({ ...base, [field]: v }));
      for (const v of [min, max]) assert.ok('spec' in (at(v) as object), `${field} ${v}`);
      for (const v of [min - 1, max + 1])
        assert.equal((at(v) as { field?: string }).field, field, `${field} ${v}`);
    }
  });

  it('names the field and the bound', () => {
    const refusals: Array<[() => unknown, string, string]> = [
      [() => compileTypedFunctionSpec({ ...base, port: 0 }), 'port', 'must be at least 1'],
      // Past the bound, not "not an integer", however large.
      [() => compileFunctionSpec({ ...base, port: 1e20 }), 'port', 'must be at most 65535'],
      [() => compileTypedFunctionSpec({ ...base, port: 1.5 }), 'port', 'must be an integer'],
      [
        () => compileFunctionSpec({ ...base, concurrency: 10_001 }),
        'concurrency',
        'must be at most 10000',
      ],
      [
        () => compileFunctionSpec({ ...base, env: { 'A-B': 'x' } }),
        'env',
        'env names must match [A-Za-z_][A-Za-z0-9_]*',
      ],
    ];
    for (const [compile, field, reason] of refusals)
      assert.deepEqual(outcome(compile), { field, reason });
    // The name's rules are the same where a name is checked alone (trace replay's names).
    assert.equal(functionNameSchema.safeParse('fn').success, true);
    assert.equal(
      functionNameSchema.safeParse('fn@2').error?.issues[0]?.message,
      `"fn@2": '@' marks a revision (give the function's own name)`,
    );
  });
});

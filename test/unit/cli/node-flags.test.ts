import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { nodeFlags } from '../../../src/cli/up-options.js';

describe('baton up --node-flags', () => {
  it('splits the flags on spaces', () => {
    assert.deepEqual(nodeFlags('--cpu-prof  --cpu-prof-dir=/tmp/p '), [
      '--cpu-prof',
      '--cpu-prof-dir=/tmp/p',
    ]);
    assert.deepEqual(nodeFlags(undefined), []);
    assert.deepEqual(nodeFlags('  '), []);
  });

  it('keeps a value in double quotes whole, as NODE_OPTIONS does', () => {
    assert.deepEqual(nodeFlags('--cpu-prof --cpu-prof-dir="/tmp/my profiles"'), [
      '--cpu-prof',
      '--cpu-prof-dir=/tmp/my profiles',
    ]);
    assert.deepEqual(nodeFlags('"--title=a b" --x=""'), ['--title=a b', '--x=']);
    assert.deepEqual(nodeFlags('--title="say \\"hi\\" \\\\o/"'), ['--title=say "hi" \\o/']);
  });

  it('refuses a word that is not a flag, and an unclosed quote', () => {
    assert.throws(() => nodeFlags('--cpu-prof cpu-prof-dir'), {
      message: '--node-flags: "cpu-prof-dir" is not a Node.js flag (they start with --)',
    });
    assert.throws(() => nodeFlags('--cpu-prof-dir="/tmp/a b'), {
      message: '--node-flags: a double quote is not closed',
    });
  });
});

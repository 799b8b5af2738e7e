/** Pure policies of the process runtime's isolation: limits from requests, paths to bind. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { limitsFor } from '../../../src/worker/runtimes/limits.js';
import {
  enterCommand,
  type SandboxCgroup,
} from '../../../src/worker/runtimes/process/isolation/cgroups.js';

describe('sandbox limits', () => {
  const floors = { cpuMilli: 1000, memoryMib: 128 };

  it('raises requests below the floors to them', () => {
    assert.deepEqual(limitsFor({ cpuMilli: 1, memoryMib: 1 }, floors), {
      cpuMilli: 1000,
      memoryMib: 128,
    });
  });

  it('keeps requests above the floors', () => {
    assert.deepEqual(limitsFor({ cpuMilli: 2500, memoryMib: 512 }, floors), {
      cpuMilli: 2500,
      memoryMib: 512,
    });
  });
});

describe('entering a cgroup', () => {
  it('writes its own pid to every group, then replaces itself with the command', () => {
    const group: SandboxCgroup = {
      procsFiles: ['/sys/fs/cgroup/cpu/b/s/cgroup.procs', "/odd path/it's/cgroup.procs"],
      limitCpu: () => undefined,
      limitMemory: () => undefined,
      oomKilled: () => false,
      remove: () => true,
    };
    const cmd = enterCommand(group, '/usr/bin/bwrap', ['--ro-bind', '/', '/']);
    assert.equal(cmd.command, '/bin/sh');
    assert.deepEqual(cmd.args.slice(2), ['baton-sandbox', '/usr/bin/bwrap', '--ro-bind', '/', '/']);
    assert.equal(
      cmd.args[1],
      `for f in '/sys/fs/cgroup/cpu/b/s/cgroup.procs' '/odd path/it'\\''s/cgroup.procs'; do echo $$ > "$f" || exit 125; done; exec "$@"`,
    );
  });
});

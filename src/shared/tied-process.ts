/**
 * A child process that dies with its parent: run under util-linux's
 * `setpriv --pdeathsig` where the host has it, so that a Baton daemon
 * killed outright (SIGKILL) leaves no etcd, HAProxy or `ctr` behind.
 * Without setpriv, a plain child (its parent's shutdown still stops it).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { onPath } from './path-lookup.js';

export function spawnTied(
  command: string,
  args: readonly string[],
  signal: NodeJS.Signals = 'SIGKILL',
): ChildProcessWithoutNullStreams {
  return onPath('setpriv')
    ? spawn('setpriv', ['--pdeathsig', signal, '--', command, ...args], { stdio: 'pipe' })
    : spawn(command, [...args], { stdio: 'pipe' });
}

/**
 * A child process that dies with its parent: run under util-linux's
 * `setpriv --pdeathsig` where the host has it, so that a Baton daemon
 * killed outright (SIGKILL) leaves no etcd, HAProxy or `ctr` behind.
 * Without setpriv, a plain child (its parent's shutdown still stops it).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';

let setprivPresent: boolean | undefined;

export function spawnTied(
  command: string,
  args: readonly string[],
  signal: NodeJS.Signals = 'SIGKILL',
): ChildProcessWithoutNullStreams {
  setprivPresent ??= spawnSync('setpriv', ['--help']).error === undefined;
  return setprivPresent
    ? spawn('setpriv', ['--pdeathsig', signal, '--', command, ...args], { stdio: 'pipe' })
    : spawn(command, [...args], { stdio: 'pipe' });
}

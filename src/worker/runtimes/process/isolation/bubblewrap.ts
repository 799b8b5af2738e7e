/**
 * Namespaces for process sandboxes through bubblewrap (`bwrap`): its own
 * pid, ipc, uts and mount namespaces, the host's root read-only, a private
 * writable /tmp of at most SANDBOX_TMP_MIB, a minimal /dev and its own
 * /proc. The network namespace is the host's, so the sandbox's port is
 * reachable at the worker's address.
 * Paths the sandbox needs that the private /tmp would hide (its image,
 * Baton itself when installed under /tmp) are bound back read-only.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { SANDBOX_TMP_MIB } from '../../limits.js';

export interface Bubblewrap {
  readonly version: string;
  /** `command args` inside a new sandbox that can read `paths`. */
  wrap(command: string, args: string[], paths: string[]): { command: string; args: string[] };
}

const BASE_ARGS = [
  '--unshare-pid',
  '--unshare-ipc',
  '--unshare-uts',
  '--hostname',
  'sandbox',
  '--die-with-parent',
  '--ro-bind',
  '/',
  '/',
  '--dev',
  '/dev',
  '--proc',
  '/proc',
  '--perms',
  '1777',
  '--size',
  String(SANDBOX_TMP_MIB * 1024 * 1024),
  '--tmpfs',
  '/tmp',
];

/** bubblewrap as this host runs it, or why it cannot. */
export function detectBubblewrap(binary = 'bwrap'): Bubblewrap | string {
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (version.error !== undefined)
    return `bubblewrap: ${binary} not found (Debian package bubblewrap)`;
  const trial = spawnSync(binary, [...BASE_ARGS, '/bin/true'], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  if (trial.status !== 0)
    return `bubblewrap: cannot create namespaces here (${(trial.stderr || `exit ${String(trial.status)}`).trim()})`;
  return {
    version: version.stdout.trim(),
    wrap(command, args, paths) {
      const binds: string[] = [];
      const made = new Set<string>();
      for (const p of hiddenByTmp(paths)) {
        // bwrap makes a bind's missing parents in the private /tmp with mode 700, which a
        // sandbox user could not pass: make them first, searchable by all, as on the host.
        for (const dir of parentsBelowTmp(p))
          if (!made.has(dir)) {
            made.add(dir);
            binds.push('--perms', '0755', '--dir', dir);
          }
        binds.push('--ro-bind', p, p);
      }
      return { command: binary, args: [...BASE_ARGS, ...binds, '--', command, ...args] };
    },
  };
}

/** The paths under /tmp (which the private /tmp hides), without ones inside another. */
function hiddenByTmp(paths: string[]): string[] {
  const under = [...new Set(paths.map((p) => resolve(p)))].filter((p) => p.startsWith('/tmp/'));
  return under.filter((p) => !under.some((q) => q !== p && p.startsWith(`${q}/`))).sort();
}

/** The directories between /tmp and `path` (both excluded), outermost first. */
function parentsBelowTmp(path: string): string[] {
  const out: string[] = [];
  for (let d = dirname(path); d !== '/tmp' && d !== '/'; d = dirname(d)) out.unshift(d);
  return out;
}

/** The directory a file's sandbox must see: the file's own directory. */
export function containingDir(path: string): string {
  return dirname(resolve(path));
}

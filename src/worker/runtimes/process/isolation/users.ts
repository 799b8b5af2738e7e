/**
 * Unprivileged users for process sandboxes. A worker that runs as root
 * starts every sandbox (and every pre-warmed pool host) as a user of its
 * own: uid and gid `SANDBOX_UID_BASE + N`, N one of the worker's sandbox
 * ports, so two sandboxes on a host, of this worker or of another, never
 * share a user. The switch happens last, after the sandbox entered its
 * cgroup and its namespaces: `setpriv` drops every group and capability and
 * sets no_new_privs (a setuid program cannot give root back); `prlimit`
 * bounds its processes and open files first. A sandbox can then read only
 * what any user may read, write only its own /tmp, and signal nothing but
 * its own processes.
 *
 * A worker that is not root cannot switch users: its sandboxes run as its
 * own (unprivileged) user.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { onPath } from '../../../../shared/path-lookup.js';
import { SANDBOX_MAX_PROCESSES } from '../../limits.js';

/** Far above login users, system users, systemd's dynamic users and the usual subuid ranges. */
export const SANDBOX_UID_BASE = 2_000_000_000;
/** Processes (threads count) one sandbox user may have: a fork bomb stops here. */
export const SANDBOX_NPROC = SANDBOX_MAX_PROCESSES;
/** Open files per process of a sandbox. */
export const SANDBOX_NOFILE = 4096;

export interface SandboxUsers {
  /** Users this worker may give out, for the start-up report. */
  readonly description: string;
  /** The first and last uid it may give out. */
  readonly uids: readonly [number, number];
  /** A user no live sandbox of this worker has; undefined when every one is taken. */
  acquire(): number | undefined;
  release(uid: number): void;
  /** `command args`, started as `uid` with the limits above. */
  wrap(uid: number, command: string, args: string[]): { command: string; args: string[] };
}

/**
 * Users for sandboxes on ports `first`-`last`, or why there are none: the
 * worker is not root, or setpriv / prlimit (util-linux) are missing.
 */
export function detectSandboxUsers(first: number, last: number): SandboxUsers | string {
  if (process.getuid?.() !== 0)
    return `sandbox users: the worker runs as uid ${String(process.getuid?.())}, not root; sandboxes run as that user`;
  for (const tool of ['setpriv', 'prlimit'])
    if (!onPath(tool)) return `sandbox users: ${tool} not found (Debian package util-linux)`;
  const free: number[] = [];
  for (let port = first; port <= last; port++) free.push(SANDBOX_UID_BASE + port);
  return {
    description: `uids ${SANDBOX_UID_BASE + first}-${SANDBOX_UID_BASE + last}, one per sandbox, no capabilities, no_new_privs, ${SANDBOX_NPROC} processes`,
    uids: [SANDBOX_UID_BASE + first, SANDBOX_UID_BASE + last],
    // Least recently released first: a user's stray processes are gone long before it is reused.
    acquire: () => free.shift(),
    release: (uid) => {
      free.push(uid);
    },
    wrap: (uid, command, args) => ({
      command: 'prlimit',
      args: [
        `--nproc=${SANDBOX_NPROC}`,
        `--nofile=${SANDBOX_NOFILE}`,
        '--',
        'setpriv',
        `--reuid=${uid}`,
        `--regid=${uid}`,
        '--clear-groups',
        '--inh-caps=-all',
        '--bounding-set=-all',
        '--no-new-privs',
        '--',
        command,
        ...args,
      ],
    }),
  };
}

/**
 * Why a sandbox user (neither owner nor group member of anything) cannot
 * read `paths`, or undefined when it can: each directory on the way must
 * let others search it, and each path itself be readable (and searchable,
 * if a directory) by others.
 */
export function unreadableByOthers(paths: string[]): string | undefined {
  for (const path of paths.map((p) => resolve(p))) {
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      const why = lacks(dir, 0o001, 'search');
      if (why !== undefined) return why;
      if (dir === '/') break;
    }
    const why = lacks(path, 0o004, 'read');
    if (why !== undefined) return why;
  }
  return undefined;
}

function lacks(path: string, bits: number, what: string): string | undefined {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return undefined; // a missing path is reported by the start itself
  }
  const need = (mode & 0o40000) !== 0 ? bits | 0o001 : bits;
  if ((mode & need) === need) return undefined;
  return `${path} (mode ${(mode & 0o777).toString(8)}) does not let other users ${what} it, and sandboxes run as users of their own: chmod o+rX it`;
}

/**
 * Namespaces for process sandboxes through bubblewrap (`bwrap`): its own
 * pid, ipc, uts and mount namespaces, a root of its own that holds only the
 * host's system directories (SYSTEM_DIRS: programs, libraries, /etc),
 * read-only, a private writable /tmp of at most SANDBOX_TMP_MIB, a minimal
 * /dev and its own /proc. What else the sandbox needs (its image, Baton's
 * guest, Node) is bound read-only at its own path; the rest of the host
 * (home directories, other functions, Baton's data, /sys and the cgroup
 * tree, /var, /opt, /srv) is not there. The network namespace is the
 * host's, so the sandbox's port is reachable at the worker's address.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { SANDBOX_TMP_MIB } from '../../limits.js';

export interface Bubblewrap {
  readonly version: string;
  /** `command args` inside a new sandbox that can read `paths`. */
  wrap(command: string, args: string[], paths: string[]): { command: string; args: string[] };
}

/** The host's directories every sandbox sees, read-only, where they exist (symlinks kept as such). */
const SYSTEM_DIRS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];

const NAMESPACES = [
  '--unshare-pid',
  '--unshare-ipc',
  '--unshare-uts',
  '--hostname',
  'sandbox',
  '--die-with-parent',
];

/**
 * bwrap is started with SIGKILL as its parent-death signal already set:
 * its own `--die-with-parent` takes effect only once its sandbox is set up,
 * and a worker killed before that left the outer bwrap waiting on its
 * child for ever, a child of init (seen after an integration run).
 */
function diesWithWorker(command: string, args: string[]): { command: string; args: string[] } {
  return { command: 'setpriv', args: ['--pdeathsig', 'KILL', '--', command, ...args] };
}

const MOUNTS = [
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

/** The system part of the sandbox's root: SYSTEM_DIRS, and where /etc/resolv.conf points outside /etc. */
function systemRoot(): { args: string[]; dirs: string[] } {
  const args: string[] = [];
  const dirs: string[] = [];
  for (const dir of SYSTEM_DIRS) {
    if (!existsSync(dir)) continue;
    if (lstatSync(dir).isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else {
      args.push('--ro-bind', dir, dir);
      dirs.push(dir);
    }
  }
  // systemd-resolved's /etc/resolv.conf points into /run: without its target there is no DNS.
  try {
    const resolver = dirname(realpathSync('/etc/resolv.conf'));
    if (!dirs.some((d) => within(resolver, d))) {
      args.push(...parentsOf(resolver, new Set()), '--ro-bind', resolver, resolver);
      dirs.push(resolver);
    }
  } catch {
    // No resolver configured: nothing to bind.
  }
  return { args, dirs };
}

/** bubblewrap as this host runs it, or why it cannot. */
export function detectBubblewrap(binary = 'bwrap'): Bubblewrap | string {
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (version.error !== undefined)
    return `bubblewrap: ${binary} not found (Debian package bubblewrap)`;
  const system = systemRoot();
  const base = [...NAMESPACES, ...system.args, ...MOUNTS];
  const started = diesWithWorker(binary, [...base, '/bin/true']);
  const trial = spawnSync(started.command, started.args, { encoding: 'utf8', timeout: 5_000 });
  if (trial.error !== undefined)
    return `bubblewrap: cannot run it under setpriv --pdeathsig (${trial.error.message}; Debian package util-linux)`;
  if (trial.status !== 0)
    return `bubblewrap: cannot create namespaces here (${(trial.stderr || `exit ${String(trial.status)}`).trim()})`;
  return {
    version: version.stdout.trim(),
    wrap(command, args, paths) {
      const binds: string[] = [];
      const made = new Set<string>();
      for (const p of outermost(withPackageFiles(paths), system.dirs))
        binds.push(...parentsOf(p, made), '--ro-bind', p, p);
      return diesWithWorker(binary, [...base, ...binds, '--', command, ...args]);
    },
  };
}

/** The paths not inside `visible` dirs, without ones inside another, resolved. */
function outermost(paths: string[], visible: string[]): string[] {
  const wanted = [...new Set(paths.map((p) => resolve(p)))].filter(
    (p) => !visible.some((d) => within(p, d)),
  );
  return wanted.filter((p) => !wanted.some((q) => q !== p && within(p, q))).sort();
}

/**
 * `paths` with what Node looks at beside them: the package.json files and
 * node_modules of their ancestors (a module's type, its packages) and their
 * own node_modules; and, for each, where it leads when it is a symbolic link
 * (a linked node_modules would otherwise point at nothing).
 */
function withPackageFiles(paths: string[]): string[] {
  const out = new Set<string>();
  const add = (p: string) => {
    if (!existsSync(p)) return;
    out.add(p);
    const real = realpathSync(p);
    if (real !== p) out.add(real);
  };
  for (const p of paths) {
    add(p);
    add(`${resolve(p)}/node_modules`);
    for (let d = dirname(resolve(p)); d !== '/'; d = dirname(d))
      for (const f of ['package.json', 'node_modules']) add(`${d}/${f}`);
  }
  return [...out];
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/**
 * Arguments that make the directories between / and `path` (both
 * excluded), outermost first, searchable by all as on the host: bwrap
 * would make a bind's missing parents with mode 700, which a sandbox user
 * could not pass. `made` skips those already made for another path.
 */
function parentsOf(path: string, made: Set<string>): string[] {
  const out: string[] = [];
  for (let d = dirname(path); d !== '/'; d = dirname(d))
    if (!made.has(d)) {
      made.add(d);
      out.unshift('--perms', '0755', '--dir', d);
    }
  return out;
}

/** The directory a file's sandbox must see: the file's own directory. */
export function containingDir(path: string): string {
  return dirname(resolve(path));
}

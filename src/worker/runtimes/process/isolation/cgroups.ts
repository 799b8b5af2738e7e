/**
 * CPU, memory and process-count limits for process sandboxes through Linux
 * cgroups: v2 where the unified hierarchy has the cpu and memory
 * controllers, v1 (one hierarchy per controller) otherwise. Each sandbox gets
 * a group `baton-PID-N/SANDBOX` (PID: the worker's), made before the sandbox
 * starts and removed after it exits; the sandbox enters it before it runs
 * anything (see `enterCommand`).
 */
import { processAlive } from '../../../../shared/process-alive.js';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../../../shared/errors.js';
import type { SandboxLimits } from '../../limits.js';

const ROOT = '/sys/fs/cgroup';
/** CFS period; a quota of `milli * PERIOD / 1000` gives `milli` milli-CPUs. */
const CPU_PERIOD_US = 100_000;
/** Tasks one sandbox may run (fork bombs stop here). */
export const SANDBOX_PIDS_MAX = 1024;

export type { SandboxLimits };

/** A sandbox's group(s): the `cgroup.procs` files to join, and how to read and remove them. */
export interface SandboxCgroup {
  readonly procsFiles: string[];
  /** Sets the CPU quota (0 = none). */
  limitCpu(milli: number): void;
  /** Sets the memory limit (0 = none). */
  limitMemory(mib: number): void;
  /** True when the kernel's OOM killer killed a task of this group. */
  oomKilled(): boolean;
  /** Removes the group; false while it still has tasks. */
  remove(): boolean;
}

export interface Cgroups {
  readonly version: 1 | 2;
  /** What the host gives, for the worker's start-up report. */
  readonly description: string;
  create(sandboxId: string, limits: SandboxLimits): SandboxCgroup;
  /**
   * Removes the worker's parent group(s), waiting (up to a few seconds) for
   * the kernel to reap the last tasks of the sandboxes just stopped.
   */
  close(): Promise<void>;
}

let runtimes = 0;

/**
 * The cgroups this host lets the worker use, or why not. Each call has its
 * own parent group (several runtimes may share a process: `--count`, tests).
 */
export function detectCgroups(workerTag = `baton-${process.pid}-${++runtimes}`): Cgroups | string {
  const v2 = tryV2(workerTag);
  if (typeof v2 !== 'string') return v2;
  const v1 = tryV1(workerTag);
  if (typeof v1 !== 'string') return v1;
  return `${v2}; ${v1}`;
}

function tryV2(tag: string): Cgroups | string {
  const controllers = readOr(join(ROOT, 'cgroup.controllers'));
  if (controllers === undefined) return 'cgroup v2: not mounted at /sys/fs/cgroup';
  const have = new Set(controllers.trim().split(/\s+/));
  const missing = ['cpu', 'memory'].filter((c) => !have.has(c));
  if (missing.length > 0) return `cgroup v2: no ${missing.join(' or ')} controller`;
  const parent = join(ROOT, tag);
  removeStaleGroups(ROOT);
  try {
    // Controllers reach a child only through its parent's subtree_control.
    writeFileSync(join(ROOT, 'cgroup.subtree_control'), '+cpu +memory +pids');
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, 'cgroup.subtree_control'), '+cpu +memory +pids');
  } catch (err) {
    safeRmdir(parent);
    return `cgroup v2: cannot delegate cpu and memory (${errorMessage(err)})`;
  }
  return {
    version: 2,
    description: 'cgroup v2 (cpu.max, memory.max, pids.max)',
    create(id, limits) {
      const dir = join(parent, id);
      mkdirSync(dir);
      const limitCpu = (milli: number) =>
        writeFileSync(
          join(dir, 'cpu.max'),
          `${milli > 0 ? quotaUs(milli) : 'max'} ${CPU_PERIOD_US}`,
        );
      limitCpu(limits.cpuMilli);
      const limitMemory = (mib: number) => {
        writeFileSync(join(dir, 'memory.max'), mib > 0 ? String(mib * 1024 * 1024) : 'max');
        writeIfExists(join(dir, 'memory.swap.max'), '0');
      };
      limitMemory(limits.memoryMib);
      writeIfExists(join(dir, 'pids.max'), String(SANDBOX_PIDS_MAX));
      return {
        procsFiles: [join(dir, 'cgroup.procs')],
        limitCpu,
        limitMemory,
        oomKilled: () => counter(readOr(join(dir, 'memory.events')), 'oom_kill') > 0,
        remove: () => safeRmdir(dir),
      };
    },
    close: () => removeSoon([parent]),
  };
}

function tryV1(tag: string): Cgroups | string {
  const cpu = join(ROOT, 'cpu');
  const memory = join(ROOT, 'memory');
  const pids = join(ROOT, 'pids');
  if (
    !existsSync(join(cpu, 'cpu.cfs_quota_us')) ||
    !existsSync(join(memory, 'memory.limit_in_bytes'))
  )
    return 'cgroup v1: no cpu and memory hierarchies under /sys/fs/cgroup';
  // pids.max exists only below the root: the mounted hierarchy is the test.
  const hierarchies = existsSync(join(pids, 'cgroup.procs')) ? [cpu, memory, pids] : [cpu, memory];
  for (const h of hierarchies) removeStaleGroups(h);
  try {
    for (const h of hierarchies) mkdirSync(join(h, tag), { recursive: true });
  } catch (err) {
    for (const h of hierarchies) safeRmdir(join(h, tag));
    return `cgroup v1: cannot create groups (${errorMessage(err)})`;
  }
  return {
    version: 1,
    description: `cgroup v1 (cpu.cfs_quota_us, memory.limit_in_bytes${hierarchies.includes(pids) ? ', pids.max' : ''})`,
    create(id, limits) {
      const dirs = hierarchies.map((h) => join(h, tag, id));
      try {
        for (const d of dirs) mkdirSync(d);
        const [cpuDir, memDir, pidsDir] = dirs as [string, string, string | undefined];
        writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        limitCpuV1(cpuDir, limits.cpuMilli);
        limitMemoryV1(memDir, limits.memoryMib);
        if (pidsDir !== undefined)
          writeFileSync(join(pidsDir, 'pids.max'), String(SANDBOX_PIDS_MAX));
      } catch (err) {
        for (const d of dirs) safeRmdir(d);
        throw err;
      }
      const memDir = dirs[1]!;
      return {
        procsFiles: dirs.map((d) => join(d, 'cgroup.procs')),
        limitCpu: (milli) => limitCpuV1(dirs[0]!, milli),
        limitMemory: (mib) => limitMemoryV1(memDir, mib),
        oomKilled: () => {
          const oom = readOr(join(memDir, 'memory.oom_control'));
          // oom_kill is there since Linux 4.13; before, a limit that was hit is the best evidence.
          if (oom !== undefined && /\boom_kill\b/.test(oom)) return counter(oom, 'oom_kill') > 0;
          return Number(readOr(join(memDir, 'memory.failcnt')) ?? '0') > 0;
        },
        remove: () => dirs.map(safeRmdir).every(Boolean),
      };
    },
    close: () => removeSoon(hierarchies.map((h) => join(h, tag))),
  };
}

/** The CFS quota for `milli` milli-CPU; the kernel takes no less than 1 ms. */
function quotaUs(milli: number): number {
  return Math.max(1000, Math.round((milli * CPU_PERIOD_US) / 1000));
}

function limitCpuV1(cpuDir: string, milli: number): void {
  writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(milli > 0 ? quotaUs(milli) : -1));
}

/**
 * Memory and memory+swap to the same limit (so the group is OOM-killed
 * rather than swapped, where swap is accounted). The kernel keeps memsw at or
 * above the memory limit: raising, memsw goes first; lowering, it goes last.
 */
function limitMemoryV1(memDir: string, mib: number): void {
  const bytes = mib > 0 ? String(mib * 1024 * 1024) : '-1';
  const memsw = join(memDir, 'memory.memsw.limit_in_bytes');
  const limit = join(memDir, 'memory.limit_in_bytes');
  if (!existsSync(memsw)) {
    writeFileSync(limit, bytes);
    return;
  }
  try {
    writeFileSync(memsw, bytes);
    writeFileSync(limit, bytes);
  } catch {
    writeFileSync(limit, bytes);
    writeFileSync(memsw, bytes);
  }
}

/**
 * A command that enters the sandbox's groups and then executes `command`:
 * a shell writes its own pid into each `cgroup.procs` and replaces itself,
 * so that nothing of the sandbox runs outside its limits, not even briefly.
 */
export function enterCommand(
  group: SandboxCgroup,
  command: string,
  args: string[],
): { command: string; args: string[] } {
  const script = `for f in ${group.procsFiles.map(shellQuote).join(' ')}; do echo $$ > "$f" || exit 125; done; exec "$@"`;
  return { command: '/bin/sh', args: ['-c', script, 'baton-sandbox', command, ...args] };
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function counter(text: string | undefined, key: string): number {
  const m = new RegExp(`^${key}\\s+(\\d+)`, 'm').exec(text ?? '');
  return m === null ? 0 : Number(m[1]);
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function writeIfExists(path: string, value: string): void {
  if (existsSync(path)) writeFileSync(path, value);
}

async function removeSoon(dirs: string[], timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!dirs.map(safeRmdir).every(Boolean) && Date.now() < end)
    await new Promise((resolve) => setTimeout(resolve, 50));
}

/** Removes the (empty) groups of workers that are gone, such as one killed with SIGKILL. */
function removeStaleGroups(hierarchy: string): void {
  let names: string[];
  try {
    names = readdirSync(hierarchy);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^baton-(\d+)(-\d+)?$/.exec(name);
    if (m === null || processAlive(Number(m[1]))) continue;
    safeRmdir(join(hierarchy, name));
  }
}

/** Removes a group and the groups under it; false when one still has tasks. Gone already counts as removed. */
function safeRmdir(dir: string): boolean {
  try {
    for (const e of readdirSync(dir, { withFileTypes: true }))
      if (e.isDirectory()) safeRmdir(join(dir, e.name));
    rmdirSync(dir);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * Starting a process sandbox's program: in its cgroup (memory limit at once,
 * CPU quota once ready) and under bubblewrap where the host has them, in its
 * own process group, its output kept, its end described (an OOM kill as
 * such). Stopping one: SIGTERM to the group, SIGKILL after a grace period.
 * Used for sandboxes and for the pre-warmed pool's hosts alike.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../../../shared/errors.js';
import { POOL_CONTROL_FD } from '../../../guest/process/pool-protocol.js';
import { SANDBOX_ENV } from '../../../shared/sandbox-environment.js';
import { LogBuffer } from '../../log-buffer.js';
import type { ProcessImage } from './process-images.js';
import { containingDir, type Bubblewrap } from './isolation/bubblewrap.js';
import { enterCommand, type Cgroups, type SandboxCgroup } from './isolation/cgroups.js';
import type { SandboxUsers } from './isolation/users.js';

/** Variables of the worker's environment a sandbox inherits; everything else comes from the spec. */
const INHERITED_ENV = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'];

/** A started child (a sandbox, or a pool host waiting to become one), its output and its end. */
export interface Launched {
  child: ChildProcess;
  logs: LogBuffer;
  cgroup: SandboxCgroup | undefined;
  /** Its memory limit now, for the OOM kill's reason. */
  memoryMib: number;
  /** Resolves with how it ended. */
  exit: Promise<string>;
  exitReason: string | undefined;
  /** Pool hosts: lines from the control channel go here. */
  onControl: ((line: string) => void) | undefined;
  /** The user it runs as, when the worker gives each sandbox its own. */
  uid: number | undefined;
}

export interface LaunchRequest {
  /** Names its cgroup. */
  groupId: string;
  command: string;
  args: string[];
  cwd: string | undefined;
  env: Record<string, string>;
  memoryMib: number;
  /** What it must be able to read under bubblewrap (besides Baton's own directories). */
  paths: string[];
  /** Open a control channel on fd POOL_CONTROL_FD (pool hosts). */
  control: boolean;
}

/** Directories of Baton itself (its code and node_modules), which sandboxes run from. */
export const PACKAGE_ROOTS = [
  fileURLToPath(new URL('../../../..', import.meta.url)),
  dirname(process.execPath),
];

export class Launcher {
  constructor(
    /** Namespaces, where the host has bubblewrap. */
    readonly bwrap: Bubblewrap | undefined,
    /** Limits, where the host lets the worker use cgroups. */
    readonly cgroups: Cgroups | undefined,
    readonly logBufferBytes: number | undefined,
    /** A user of its own per sandbox, where the worker runs as root. */
    readonly users?: SandboxUsers,
  ) {}

  /** Starts a program as a sandbox (or pool host). Throws if it cannot be spawned at all. */
  launch(r: LaunchRequest): Launched {
    const uid = this.users?.acquire();
    if (this.users !== undefined && uid === undefined)
      throw new Error('every sandbox user of this worker is taken');
    let cgroup: SandboxCgroup | undefined;
    let child: ChildProcess;
    try {
      cgroup = this.cgroups?.create(r.groupId, { cpuMilli: 0, memoryMib: r.memoryMib });
      let cmd = { command: r.command, args: r.args };
      // Innermost: the user switch comes last, once in its cgroup and namespaces.
      if (uid !== undefined) cmd = this.users!.wrap(uid, cmd.command, cmd.args);
      if (this.bwrap !== undefined)
        cmd = this.bwrap.wrap(cmd.command, cmd.args, [...r.paths, ...PACKAGE_ROOTS]);
      if (cgroup !== undefined) cmd = enterCommand(cgroup, cmd.command, cmd.args);
      child = spawn(cmd.command, cmd.args, {
        cwd: r.cwd,
        env: r.env,
        stdio: r.control ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      cgroup?.remove();
      if (uid !== undefined) this.users!.release(uid);
      throw err;
    }
    const logs = new LogBuffer(this.logBufferBytes);
    child.stdout?.on('data', (c: Buffer) => logs.append(c));
    child.stderr?.on('data', (c: Buffer) => logs.append(c));
    child.stdin?.on('error', () => undefined);
    const proc: Launched = {
      child,
      logs,
      cgroup,
      memoryMib: r.memoryMib,
      exit: undefined as never,
      exitReason: undefined,
      onControl: undefined,
      uid,
    };
    if (r.control) readControlLines(proc);
    proc.exit = new Promise<string>((resolve) => {
      child.once('error', (err) => {
        proc.exitReason ??= `cannot start ${r.command}: ${errorMessage(err)}`;
        if (child.exitCode === null && child.signalCode === null && child.pid === undefined)
          resolve(proc.exitReason);
      });
      child.once('exit', (code, sig) => {
        proc.exitReason ??=
          proc.cgroup?.oomKilled() === true
            ? `killed by the OOM killer: over its memory limit of ${proc.memoryMib} MiB`
            : describeExit(code, sig, logs);
        resolve(proc.exitReason);
      });
    });
    void proc.exit.then(() => {
      if (proc.cgroup !== undefined) removeWhenEmpty(proc.cgroup);
      if (uid !== undefined) this.users!.release(uid);
    });
    return proc;
  }

  /** Releases the cgroups' parent groups once every sandbox is gone. */
  async close(): Promise<void> {
    await this.cgroups?.close();
  }
}

/** SIGTERM to the group, SIGKILL after `graceMs`; resolves once it exited. */
export async function stopProcess(proc: Launched, graceMs: number): Promise<void> {
  signalGroup(proc.child, 'SIGTERM');
  const killer = setTimeout(() => signalGroup(proc.child, 'SIGKILL'), graceMs);
  await proc.exit;
  clearTimeout(killer);
}

export function signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, sig);
  } catch {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** The variables of the worker's own environment that every sandbox gets. */
export function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

/** What a sandbox of `image` must be able to read: its program, its directory, its handler. */
export function imagePaths(image: ProcessImage): string[] {
  const paths = [image.command, ...image.args].filter((p) => p.startsWith('/')).map(containingDir);
  if (image.cwd !== undefined) paths.push(image.cwd);
  const handler = image.env[SANDBOX_ENV.handler];
  if (handler !== undefined) paths.push(containingDir(handler));
  return paths;
}

export function isWithin(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return path === d || path.startsWith(`${d}/`);
}

/** Hands each line written on the control channel (fd POOL_CONTROL_FD) to `proc.onControl`. */
function readControlLines(proc: Launched): void {
  const channel = proc.child.stdio[POOL_CONTROL_FD] as Readable & Writable;
  let buffered = '';
  channel.on('error', () => undefined);
  channel.on('data', (c: Buffer) => {
    buffered += c.toString('utf8');
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      proc.onControl?.(line);
    }
  });
}

/** A group is removable once the kernel has reaped its last task: retry for a while. */
function removeWhenEmpty(cgroup: SandboxCgroup, attempts = 40): void {
  if (cgroup.remove() || attempts <= 0) return;
  setTimeout(() => removeWhenEmpty(cgroup, attempts - 1), 50).unref();
}

function describeExit(code: number | null, sig: NodeJS.Signals | null, logs: LogBuffer): string {
  const how = sig !== null ? `killed by ${sig}` : `exited with code ${code ?? '?'}`;
  const tail = logs.tail(3);
  return tail.length > 0 ? `${how}: ${tail}` : how;
}

/**
 * `baton up`'s supervisor: runs each daemon as a child process, writes its
 * output to `<log dir>/<name>.log` (echoing warnings and errors here),
 * restarts one that dies with back-off (0.5 s doubling to 30 s while it keeps
 * dying, afresh once it has run a minute) for as long as it dies, never
 * stopping the healthy ones for it, and reports every daemon's state to the
 * control planes over IPC (`baton status` shows it). `stopAll` stops the
 * front, then workers (their sandboxes with them), then data planes, then
 * control planes, then etcd.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../shared/errors.js';
import {
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  WORKER_SHUTDOWN_TIMEOUT_MS,
  type ReadyMessage,
} from '../shared/daemon.js';
import type { SupervisedDaemon, SupervisorReport } from '../shared/supervision.js';
import { spawnBaton } from './spawn-baton.js';

const READY_TIMEOUT_MS = 60_000;
const FIRST_RESTART_DELAY_MS = 500;
const MAX_RESTART_DELAY_MS = 30_000;
/** A daemon that ran this long before it died starts its back-off afresh. */
const STABLE_RUN_MS = 60_000;

/** The wait before restarting a daemon after its `failures`-th failure in a row. */
export function restartDelayMs(failures: number): number {
  return Math.min(MAX_RESTART_DELAY_MS, FIRST_RESTART_DELAY_MS * 2 ** Math.max(0, failures - 1));
}

export type DaemonRole = 'etcd' | 'control-plane' | 'data-plane' | 'worker' | 'front';

export interface Supervised {
  readonly name: string;
  readonly role: DaemonRole;
  /** `baton` arguments; may change once ports are known (a restart must come back on them). */
  args: string[];
  child: ChildProcess | undefined;
  ready: ReadyMessage | undefined;
  /** Restarts in all. */
  restarts: number;
  /** Failures since it last ran for STABLE_RUN_MS: sets the back-off. */
  failures: number;
  readyAt: number | undefined;
  lastExit: string | null;
  readonly log: WriteStream;
  stopping: boolean;
}

export class Supervisor {
  readonly #logDir: string;
  readonly #nodeFlags: readonly string[];
  readonly #daemons: Supervised[] = [];
  #stopping = false;

  /** `nodeFlags`: Node.js flags every daemon runs with (besides Baton's own). */
  constructor(logDir: string, nodeFlags: readonly string[] = []) {
    this.#logDir = logDir;
    this.#nodeFlags = nodeFlags;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  get daemons(): readonly Supervised[] {
    return this.#daemons;
  }

  /** Adds a daemon (not started yet). */
  add(name: string, role: DaemonRole, args: string[]): Supervised {
    const s: Supervised = {
      name,
      role,
      args,
      child: undefined,
      ready: undefined,
      restarts: 0,
      failures: 0,
      readyAt: undefined,
      lastExit: null,
      log: createWriteStream(join(this.#logDir, `${name}.log`), { flags: 'a' }),
      stopping: false,
    };
    this.#daemons.push(s);
    return s;
  }

  /** Starts (or restarts) a daemon; resolves once it is ready, rejects if it fails to start. */
  start(s: Supervised): Promise<ReadyMessage> {
    const spawned = spawnBaton(s.args, {
      nodeFlags: this.#nodeFlags,
      readyTimeoutMs: READY_TIMEOUT_MS,
      onStdout: (chunk) => s.log.write(chunk),
      onStderr: (chunk) => {
        s.log.write(chunk);
        // Once stopping, the daemons' complaints about each other are expected: keep them in the logs only.
        if (!this.#stopping)
          for (const line of chunk.toString().split('\n')) echoIfNotable(s.name, line);
      },
    });
    s.child = spawned.child;
    s.ready = undefined;
    s.readyAt = undefined;
    spawned.child.once('exit', (code, signal) => {
      if (s.ready === undefined || s.stopping || this.#stopping) return;
      this.#onCrash(s, signal ?? `code ${code}`);
    });
    return spawned.ready.then((m) => {
      s.ready = m;
      s.readyAt = Date.now();
      if (s.restarts > 0) process.stderr.write(`baton up: ${s.name} is back (pid ${m.pid})\n`);
      this.#report();
      return m;
    });
  }

  /** Stops everything: the front, workers, then data planes, then control planes, then etcd. */
  async stopAll(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const role of ['front', 'worker', 'data-plane', 'control-plane', 'etcd'] as const)
      await Promise.all(this.#daemons.filter((s) => s.role === role).map((s) => this.#stop(s)));
    for (const s of this.#daemons) s.log.end();
  }

  /** Restarts a daemon that died (or failed to start again), after its back-off; never gives up. */
  #onCrash(s: Supervised, how: string): void {
    const ranFor = s.readyAt === undefined ? 0 : Date.now() - s.readyAt;
    s.failures = ranFor >= STABLE_RUN_MS ? 1 : s.failures + 1;
    s.restarts++;
    s.lastExit = how;
    s.ready = undefined;
    s.readyAt = undefined;
    const delay = restartDelayMs(s.failures);
    process.stderr.write(
      `baton up: ${s.name} exited (${how}); restart ${s.restarts} in ${delay} ms (see ${join(this.#logDir, `${s.name}.log`)})\n`,
    );
    this.#report();
    setTimeout(() => {
      if (this.#stopping) return;
      this.start(s).catch((err: unknown) => {
        if (this.#stopping) return;
        process.stderr.write(`baton up: ${errorMessage(err)}\n`);
        this.#onCrash(s, 'failed to start');
      });
    }, delay);
  }

  /** Tells the control planes (those running) how every supervised daemon is doing. */
  #report(): void {
    if (this.#stopping) return;
    const daemons: SupervisedDaemon[] = this.#daemons.map((s) => ({
      name: s.name,
      pid: s.ready === undefined ? null : (s.child?.pid ?? null),
      state: s.ready === undefined ? 'restarting' : 'running',
      restarts: s.restarts,
      lastExit: s.lastExit,
      since: s.readyAt === undefined ? null : new Date(s.readyAt).toISOString(),
    }));
    // One that is going away gets the next report once it is back.
    for (const s of this.#daemons) {
      const cp = s.role === 'control-plane' ? s.child : undefined;
      if (cp?.connected === true)
        cp.send({ type: 'baton-supervisor', daemons } satisfies SupervisorReport, () => undefined);
    }
  }

  /** SIGTERM, SIGKILL a little past the daemon's own shutdown limit. */
  #stop(s: Supervised): Promise<void> {
    s.stopping = true;
    const child = s.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve();
    const limit = s.role === 'worker' ? WORKER_SHUTDOWN_TIMEOUT_MS : DEFAULT_SHUTDOWN_TIMEOUT_MS;
    return new Promise((done) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), limit + 5_000);
      child.once('exit', () => {
        clearTimeout(kill);
        done();
      });
      child.kill('SIGTERM');
    });
  }
}

/** Echoes a daemon's warnings and errors (pino JSON lines, level >= 40) and non-JSON lines. */
function echoIfNotable(name: string, line: string): void {
  const t = line.trim();
  if (t.length === 0) return;
  if (!t.startsWith('{')) {
    process.stderr.write(`[${name}] ${t}\n`);
    return;
  }
  try {
    const j = JSON.parse(t) as Record<string, unknown>;
    const level = typeof j.level === 'number' ? j.level : 30;
    if (level < 40) return;
    const { level: _l, time: _t, pid: _p, component: _c, node: _n, msg, ...rest } = j;
    const extra = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : '';
    process.stderr.write(`[${name}] ${level >= 50 ? 'error' : 'warn'}: ${String(msg)}${extra}\n`);
  } catch {
    process.stderr.write(`[${name}] ${t}\n`);
  }
}

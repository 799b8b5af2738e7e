/**
 * The pre-warmed pool: Node hosts started ahead (isolated and limited like
 * sandboxes, with the TypeScript loader and the servers' code loaded) that
 * become sandboxes of built-in images and JS/TS modules when told their
 * function over a control pipe, so such a cold start skips Node's own
 * start-up. A host that dies before it is warm disables the pool (logged)
 * rather than respawning in a loop.
 */
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import type { Logger } from '../../../shared/logger.js';
import { errorMessage } from '../../../shared/errors.js';
import { nodeEntry } from '../../../shared/node-entry.js';
import { POOL_CONTROL_FD, type PoolAssignment } from '../../../guest/process/pool-protocol.js';
import { SANDBOX_ENV } from '../../../shared/sandbox-environment.js';
import type { ProcessImage } from './process-images.js';
import {
  PACKAGE_ROOTS,
  imagePaths,
  inheritedEnv,
  isWithin,
  stopProcess,
  type Launched,
  type Launcher,
} from './launcher.js';

interface PoolHost {
  proc: Launched;
  state: 'starting' | 'warm';
}

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface PrewarmPoolOptions {
  /** Hosts kept waiting. */
  size: number;
  host: string;
  memoryMib: number;
  stopGraceMs: number;
  logger: Logger;
}

export class PrewarmPool {
  readonly #hosts: PoolHost[] = [];
  readonly #launcher: Launcher;
  readonly #o: PrewarmPoolOptions;
  readonly #machine = hostname();
  #seq = 0;
  /** Set when hosts die before they are warm: the pool stops refilling. */
  #broken: string | undefined;
  #closed = false;

  constructor(launcher: Launcher, options: PrewarmPoolOptions) {
    this.#launcher = launcher;
    this.#o = options;
  }

  /** Hosts warm and waiting (for tests and benchmarks). */
  get warm(): number {
    return this.#hosts.filter((h) => h.state === 'warm').length;
  }

  /** Starts hosts until the pool is full. */
  fill(): void {
    while (this.#hosts.length < this.#o.size && !this.#closed && this.#broken === undefined) {
      const n = ++this.#seq;
      const { command, args } = nodeEntry(import.meta.url, '../../../guest/process/pool-host');
      const env = inheritedEnv();
      env[SANDBOX_ENV.host] = this.#o.host;
      env[SANDBOX_ENV.machineName] = this.#machine;
      let proc: Launched;
      try {
        proc = this.#launcher.launch({
          groupId: `pool-${n}`,
          command,
          args,
          cwd: undefined,
          env,
          memoryMib: this.#o.memoryMib,
          paths: [],
          control: true,
        });
      } catch (err) {
        this.#disable(`cannot start a pool host: ${errorMessage(err)}`);
        return;
      }
      const host: PoolHost = { proc, state: 'starting' };
      proc.onControl = (line) => {
        if (line === 'warm') host.state = 'warm';
      };
      this.#hosts.push(host);
      void proc.exit.then((reason) => this.#onHostExit(host, reason));
    }
  }

  /**
   * A warm host for `image`, if one is waiting and the image can be served
   * by one: a built-in image, or a module the host can read (under
   * bubblewrap the private /tmp hides paths below /tmp, which a host started
   * before the function was known cannot have bound; Baton's own
   * directories it has, wherever they are).
   */
  take(image: ProcessImage): Launched | undefined {
    if (image.pool === undefined) return undefined;
    if (
      this.#launcher.bwrap !== undefined &&
      imagePaths(image).some(
        (p) => p.startsWith('/tmp/') && !PACKAGE_ROOTS.some((root) => isWithin(p, root)),
      )
    )
      return undefined;
    const i = this.#hosts.findIndex((h) => h.state === 'warm');
    if (i < 0) return undefined;
    const [host] = this.#hosts.splice(i, 1);
    // Refill once this creation has sent its assignment: spawning is not free.
    setImmediate(() => this.fill());
    return host!.proc;
  }

  /** Sends a taken host its assignment and waits (up to `timeoutMs`) for it to serve. */
  assign(
    proc: Launched,
    assignment: PoolAssignment,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Readiness> {
    return new Promise((resolve) => {
      const done = (r: Readiness) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        proc.onControl = undefined;
        resolve(r);
      };
      const onAbort = () => done({ ready: false, reason: 'aborted' });
      const timer = setTimeout(
        () => done({ ready: false, reason: `not serving after ${timeoutMs} ms` }),
        timeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      proc.onControl = (line) => {
        if (line === 'ready') done({ ready: true });
        else if (line.startsWith('failed: ')) done({ ready: false, reason: line.slice(8) });
      };
      void proc.exit.then((reason) => done({ ready: false, reason }));
      const channel = proc.child.stdio[POOL_CONTROL_FD] as Writable;
      channel.write(`${JSON.stringify(assignment)}\n`);
    });
  }

  /** Stops the waiting hosts; no more are started. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#hosts.splice(0).map((h) => stopProcess(h.proc, this.#o.stopGraceMs)));
  }

  #onHostExit(host: PoolHost, reason: string): void {
    const i = this.#hosts.indexOf(host);
    if (i < 0) return; // taken: it is a sandbox now
    this.#hosts.splice(i, 1);
    if (this.#closed) return;
    if (host.state === 'starting') {
      this.#disable(`a pool host exited before it was warm: ${reason}`);
      return;
    }
    this.#o.logger.warn({ reason }, 'pre-warmed pool host exited; replacing it');
    this.fill();
  }

  #disable(reason: string): void {
    this.#broken = reason;
    this.#o.logger.warn({ reason }, 'pre-warmed pool disabled');
  }
}

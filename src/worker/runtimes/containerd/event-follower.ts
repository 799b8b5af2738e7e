/**
 * Follows containerd's event stream (`ctr events`) for task exits and OOM
 * kills in one namespace. The follower runs under `setpriv --pdeathsig`
 * (util-linux), so the kernel ends it with its worker however the worker
 * ends (a SIGKILLed worker left it running). If it ends it is started again,
 * and `onGap` is called once the new one is subscribed: exits in between
 * were missed.
 */
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import type { Logger } from '../../../shared/logger.js';
import { errorMessage } from '../../../shared/errors.js';
import { spawnTied } from '../../../shared/tied-process.js';
import { CONNECT_TIMEOUT } from './ctr.js';

/** A task event of a container: `exit` with its status, or `oom`. */
export type TaskEvent =
  { kind: 'exit'; containerId: string; status: number } | { kind: 'oom'; containerId: string };

export interface EventFollowerOptions {
  address: string;
  namespace: string;
  logger: Logger;
  onEvent: (event: TaskEvent) => void;
  onGap: () => void;
}

export class EventFollower {
  readonly #o: EventFollowerOptions;
  #child: ChildProcess | undefined;
  #restart: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EventFollowerOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#child !== undefined || this.#closed) return;
    const o = this.#o;
    const args = ['--address', o.address, '--connect-timeout', CONNECT_TIMEOUT, 'events'];
    const child = spawnTied('ctr', args, 'SIGTERM');
    child.stdin.end();
    this.#child = child;
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = parseEvent(line, o.namespace);
      if (event !== undefined) o.onEvent(event);
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-500)));
    child.once('error', (err) =>
      o.logger.error({ err: errorMessage(err) }, 'cannot follow containerd events'),
    );
    child.once('exit', (code) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      if (this.#closed) return;
      o.logger.warn(
        { code, stderr: stderr.trim() },
        'containerd event stream ended; following it again in 1 s',
      );
      this.#restart = setTimeout(() => {
        this.start();
        // Exits while nobody listened: once the new follower is subscribed, ask containerd.
        this.#restart = setTimeout(() => o.onGap(), 500);
      }, 1000);
    });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#restart);
    this.#child?.kill('SIGTERM');
    this.#child = undefined;
  }
}

/** "2026-11-24 14:35:11.133 +0000 UTC NAMESPACE TOPIC {json}" -> a task event of `namespace`. */
function parseEvent(line: string, namespace: string): TaskEvent | undefined {
  const m = /^\S+ \S+ \S+ \S+ (\S+) (\S+) (\{.*\})$/.exec(line);
  if (m === null || m[1] !== namespace) return undefined;
  const topic = m[2];
  if (topic !== '/tasks/exit' && topic !== '/tasks/oom') return undefined;
  let event: { container_id?: string; id?: string; exit_status?: number };
  try {
    event = JSON.parse(m[3]!) as typeof event;
  } catch {
    return undefined;
  }
  const containerId = event.container_id ?? '';
  if (topic === '/tasks/oom') return { kind: 'oom', containerId };
  // Exits of processes started inside the container (exec) carry their own id.
  if (event.id !== undefined && event.id !== event.container_id) return undefined;
  return { kind: 'exit', containerId, status: event.exit_status ?? 0 };
}

/** Why a task ended, from its exit status and whether an OOM event came for its container. */
export function taskExitReason(status: number, oom: boolean, memoryMib: number): string {
  // An OOM event counts any process of the container; the task's own SIGKILL says it was the one.
  if (oom && status === 128 + constants.signals.SIGKILL)
    return `killed by the OOM killer: over its memory limit of ${memoryMib} MiB`;
  return status > 128 ? `killed by ${signalName(status - 128)}` : `exited with code ${status}`;
}

/** SIGKILL for 9: the way an exit status over 128 names the signal that ended the task. */
function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
}

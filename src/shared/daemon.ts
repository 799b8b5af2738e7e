/**
 * Running one of Baton's daemons as a process: start-up errors become one
 * line and a non-zero exit, SIGINT/SIGTERM close it gracefully (a second
 * signal exits at once), and readiness is announced both to a human (one line
 * on stdout) and to a supervising parent (an IPC message), so `baton up` and
 * the tests learn the bound ports.
 */
import { BatonError, InvalidConfigError, errorMessage } from './errors.js';
import { startIdleCollector } from './idle-collector.js';

export interface RunningDaemon {
  /** One line for humans: where it listens. */
  readonly summary: string;
  /** Machine-readable addresses, sent to a supervising parent. */
  readonly addresses: Record<string, unknown>;
  close(): Promise<void>;
}

export interface ReadyMessage {
  type: 'baton-ready';
  daemon: string;
  pid: number;
  addresses: Record<string, unknown>;
}

export function isReadyMessage(m: unknown): m is ReadyMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'baton-ready';
}

/** Longest a daemon takes to stop gracefully before it exits anyway. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/**
 * A worker's: it stops every sandbox, and a containerd sandbox's removal
 * (task, container, CNI, namespace) runs several commands; cut short, it
 * leaves namespaces and port forwarding behind.
 */
export const WORKER_SHUTDOWN_TIMEOUT_MS = 60_000;

export async function runDaemon(
  name: string,
  start: () => Promise<RunningDaemon>,
  shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS,
): Promise<void> {
  let daemon: RunningDaemon;
  try {
    daemon = await start();
  } catch (err) {
    say(name, 'fatal', errorMessage(err));
    process.exitCode = err instanceof InvalidConfigError ? 2 : 1;
    // Give pending log writes a moment, then leave even if handles remain.
    setTimeout(() => process.exit(), 200).unref();
    return;
  }
  startIdleCollector();
  say(name, 'info', daemon.summary, 'ready');
  process.send?.({
    type: 'baton-ready',
    daemon: name,
    pid: process.pid,
    addresses: daemon.addresses,
  } satisfies ReadyMessage);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      say(name, 'warn', `${signal} again, exiting now`);
      process.exit(130);
    }
    stopping = true;
    const force = setTimeout(() => {
      say(name, 'error', 'shutdown took too long, exiting');
      process.exit(1);
    }, shutdownTimeoutMs);
    force.unref();
    daemon.close().then(
      () => process.exit(0),
      (err: unknown) => {
        say(name, 'error', `error while stopping: ${errorMessage(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('disconnect', () => stop('parent gone'));
  process.on('uncaughtException', (err) => {
    say(
      name,
      'fatal',
      `uncaught error: ${err instanceof BatonError ? err.message : (err.stack ?? String(err))}`,
    );
    process.exit(70);
  });
}

const LEVELS = { info: 30, warn: 40, error: 50, fatal: 60 } as const;

/**
 * A daemon's own line outside its logger (ready, start-up failure, exit):
 * plain for a person at a terminal; under a supervisor (`baton up`, which
 * keeps the log files), a JSON line like the logger's, so the files are
 * JSON throughout and `baton logs --daemon` reads them.
 */
export function say(
  name: string,
  level: keyof typeof LEVELS,
  text: string,
  what: 'ready' | undefined = undefined,
): void {
  const out = level === 'info' ? process.stdout : process.stderr;
  if (process.send === undefined) {
    out.write(`baton ${name}${what === undefined ? '' : ` ${what}`}: ${text}\n`);
    return;
  }
  const msg = what === undefined ? text : `${what}: ${text}`;
  out.write(
    `${JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, component: name, msg })}\n`,
  );
}

/**
 * Starting `baton <command>` as a child process and learning when it is
 * ready (the daemon sends an IPC `baton-ready` message with its addresses).
 * Used by `baton up`, and by the tests and benchmarks that start daemons.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isReadyMessage, type ReadyMessage } from '../shared/daemon.js';
import { nodeEntry } from '../shared/node-entry.js';

export const DEFAULT_READY_TIMEOUT_MS = 60_000;

/**
 * V8 flags every Baton process runs with (the `baton` bin's shebang says the
 * same; docs/ARCHITECTURE.md, Processes). Allocation-site pretenuring is
 * off: a site whose objects once outlived two scavenges (at start-up, most
 * do) then had every object allocated in the old generation, so short-lived
 * RPC messages and streams became old garbage; at 250 cold starts/s a data
 * plane ran 7 full mark-compacts a minute, each a 10-25 ms stop that left a
 * burst of late replies. The old generation is first collected at 256 MB,
 * not V8's few: a sandbox's records live seconds, so every cold start leaves
 * old garbage (about 1 MB/s at 250/s), and each process still ran a full
 * mark-compact every 7-10 s (4-20 ms stops); now one every few minutes, for
 * up to 256 MB of garbage per process. V8 keeps the size as the floor of
 * its later limits, and commits memory only as the heap grows. Functions
 * are compiled when their module loads, not at their first call (0.1 s
 * more start-up, 8 MB more memory, ~8 % more CPU per registration): a
 * fresh daemon compiled its request path on its event loop during its
 * first seconds of traffic, which then held about as many late replies as
 * the rest of a 60 s cold step. V8's memory reducer is off: it took a
 * busy daemon for an idle one and stopped it for three full collections
 * in a row; each daemon collects when it is idle by its CPU instead
 * (idle-collector.ts, which `--expose-gc` lets ask for one). The young
 * generation keeps 16 MB semi-spaces: V8 shrinks it to 1 MB at the first
 * scavenge after 5 s of little allocation, and a daemon whose objects
 * mostly die young then grows it back over seconds, scavenging every
 * 100-400 ms meanwhile (36-38 times in the first 9 s of a cold step after
 * a quiet spell, against 12 once grown).
 */
export const BATON_V8_FLAGS: readonly string[] = [
  '--no-allocation-site-pretenuring',
  '--initial-old-space-size=256',
  '--no-lazy',
  '--no-memory-reducer',
  '--expose-gc',
  '--min-semi-space-size=16',
];

export interface SpawnBatonOptions {
  /** The CLI file to run (e.g. dist/cli/baton.js); default: the one next to this module. */
  entry?: string;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
  /** A command to run it under, e.g. `ip netns exec NS` (tests across namespaces). */
  prefix?: readonly string[];
  /** Node.js flags beside BATON_V8_FLAGS (`baton up --node-flags`). */
  nodeFlags?: readonly string[];
  /** Called with every chunk the child writes to stderr / stdout. */
  onStderr?: (chunk: Buffer) => void;
  onStdout?: (chunk: Buffer) => void;
}

export interface SpawnedBaton {
  child: ChildProcess;
  /** Resolves with the ready message; rejects if the child exits or times out first (then it is killed). */
  ready: Promise<ReadyMessage>;
}

export function spawnBaton(args: string[], o: SpawnBatonOptions = {}): SpawnedBaton {
  const { command, args: entry } =
    o.entry === undefined
      ? nodeEntry(import.meta.url, './baton')
      : { command: process.execPath, args: [o.entry] };
  const node = [command, ...BATON_V8_FLAGS, ...(o.nodeFlags ?? []), ...entry, ...args];
  const [run, ...runArgs] = o.prefix === undefined ? node : [...o.prefix, ...node];
  const child = spawn(run!, runArgs, {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: o.env ?? process.env,
  });
  let tail = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
    o.onStderr?.(chunk);
  });
  child.stdout!.on('data', (chunk: Buffer) => o.onStdout?.(chunk));
  const timeoutMs = o.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const ready = new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`baton ${args[0]} did not start within ${timeoutMs / 1000} s: ${lastLine(tail)}`),
      );
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      if (!isReadyMessage(m)) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      reject(
        new Error(
          `baton ${args[0]} exited during start-up (${signal ?? `code ${code}`}): ${lastLine(tail)}`,
        ),
      );
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
  return { child, ready };
}

/**
 * Arguments of a `baton up` that shares nothing with other clusters on the
 * machine: its own data dir, every port ephemeral, warnings and errors only.
 * For tests and benchmarks.
 */
export function isolatedUpArgs(dataDir: string, extra: readonly string[] = []): string[] {
  return [
    'up',
    '--data-dir',
    dataDir,
    '--registration-port',
    '0',
    '--proxy-port',
    '0',
    '--cp-rpc-port',
    '0',
    '--dp-rpc-port',
    '0',
    '--worker-rpc-port',
    '0',
    '--etcd-port',
    '0',
    '--log-level',
    'warn',
    ...extra,
  ];
}

/** The last line a daemon wrote, made readable if it is a pino JSON line. */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const last = lines.at(-1) ?? 'no output';
  try {
    const j = JSON.parse(last) as { msg?: string; err?: string };
    return [j.msg, j.err].filter(Boolean).join(': ');
  } catch {
    return last;
  }
}

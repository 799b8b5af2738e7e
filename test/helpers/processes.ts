/**
 * Starting Baton's real daemons (from dist/, built by `npm test`) and other
 * servers for tests, on ephemeral ports, and ending every process started,
 * by PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { ReadyMessage } from '../../src/shared/daemon.js';
import { CLUSTER_TOKEN_ENV } from '../../src/shared/secrets.js';
import { isolatedUpArgs, spawnBaton } from '../../src/cli/spawn-baton.js';
import { startLocalEtcd } from '../../src/cli/local-etcd.js';
import { freePort } from '../../src/shared/port-probe.js';

export const BATON_BIN = fileURLToPath(new URL('../../dist/cli/baton.js', import.meta.url));

/**
 * Daemons that tests start alone (not through `baton up`) need the cluster
 * token for internal RPC; they inherit this one from the environment.
 */
export const TEST_CLUSTER_TOKEN = (process.env[CLUSTER_TOKEN_ENV] ??=
  randomBytes(24).toString('base64url'));

export interface Started {
  child: ChildProcess;
  pid: number;
  ready: ReadyMessage;
  /** stdout and stderr so far. */
  output: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; also ends the PIDs it reported as its children. */
  stop: (graceMs?: number) => Promise<void>;
}

const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Host pids of the processes listening on a TCP port of this machine (a
 * process sandbox's server): a sandbox in its own pid namespace reports a
 * pid (say 2) that means nothing outside it, and a pre-warmed one has no
 * sandbox id in its environment.
 */
export function pidsListeningOn(port: number): number[] {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT; state 0A is LISTEN; the inode is the tenth field.
      if (f.length > 9 && f[3] === '0A' && parseInt(f[1]!.split(':')[1]!, 16) === port)
        inodes.add(f[9]!);
    }
  }
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      for (const fd of readdirSync(`/proc/${name}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/fd/${fd}`));
        if (m !== null && inodes.has(m[1]!)) {
          pids.push(Number(name));
          break;
        }
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** A process's parent (the 4th field of /proc/PID/stat, after the command in parentheses); undefined once it is gone. */
export function parentPid(pid: number | string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}

/** Runs `baton <args>` and resolves when it reports ready (rejects if it exits first). */
export async function startBaton(
  args: string[],
  timeoutMs = 60_000,
  prefix?: readonly string[],
): Promise<Started> {
  let out = '';
  const collect = (c: Buffer) => (out += c.toString());
  const { child, ready } = spawnBaton(args, {
    entry: BATON_BIN,
    readyTimeoutMs: timeoutMs,
    ...(prefix === undefined ? {} : { prefix }),
    onStdout: collect,
    onStderr: collect,
  });
  const pid = child.pid!;
  live.add(pid);
  let message: ReadyMessage;
  try {
    message = await ready;
  } catch (err) {
    live.delete(pid);
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${out}`, { cause: err });
  }
  const childPids = (message.addresses as { pids?: number[] }).pids ?? [];
  const stop = async (graceMs = 15_000) => {
    if (isAlive(pid)) {
      child.kill('SIGTERM');
      if (!(await waitForExit(pid, graceMs))) child.kill('SIGKILL');
      await waitForExit(pid, 5000);
    }
    live.delete(pid);
    for (const c of childPids) {
      if (!(await waitForExit(c, 5000))) process.kill(c, 'SIGKILL');
    }
  };
  return { child, pid, ready: message, output: () => out, stop };
}

/** Runs `baton <args>` to completion. */
export function runBaton(
  args: string[],
  env: Record<string, string> = {},
  /** What it reads on stdin (none when not given). */
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BATON_BIN, ...args], {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    child.stdin?.end(input);
    live.add(child.pid!);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => {
      live.delete(child.pid!);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Starts a `baton <args>` that keeps running (`logs -f`); `stop` ends it with SIGINT, as Ctrl-C does. */
export function followBaton(
  args: string[],
  env: Record<string, string> = {},
): { stdout: () => string; stop: () => Promise<number> } {
  const child = spawn(process.execPath, [BATON_BIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  live.add(child.pid!);
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child.pid!);
      resolve(code ?? -1);
    }),
  );
  return {
    stdout: () => stdout,
    stop: () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

export interface BatonUp {
  registration: string;
  proxy: string;
  dataDir: string;
  up: Started;
  stop: () => Promise<void>;
}

/** `baton up` on ephemeral ports with its own data dir (kept when `dataDir` is given). */
export async function startUp(extra: string[] = [], dataDir?: string): Promise<BatonUp> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'baton-up-'));
  const up = await startBaton(isolatedUpArgs(dir, extra));
  const a = up.ready.addresses as { registration: string; proxy: string };
  return {
    registration: a.registration,
    proxy: a.proxy,
    dataDir: dir,
    up,
    stop: async () => {
      await up.stop();
      if (dataDir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TestRedis {
  url: string;
  port: number;
  pid: number;
  /** SIGKILL, as a crash would (the data on disk stays). */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (after kill). */
  restart(): Promise<void>;
  /** A setting of the running server (CONFIG GET). */
  config(key: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A redis-server on an ephemeral port in a temporary directory, with
 * durable writes (AOF, fsync always) unless `durable` is false.
 */
export async function startRedis(durable = true): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-redis-'));
  const port = await freePort('127.0.0.1');
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''];
  args.push(
    '--appendonly',
    durable ? 'yes' : 'no',
    '--appendfsync',
    durable ? 'always' : 'everysec',
  );
  let child: ChildProcess;
  const launch = async () => {
    const c = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    live.add(c.pid!);
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start: ${out}`)),
        10_000,
      );
      c.stdout.on('data', () => {
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      c.once('error', (err) =>
        reject(
          new Error(
            `cannot run redis-server (install it: apt-get install redis-server): ${err.message}`,
          ),
        ),
      );
      c.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
    });
  };
  const end = async (signal: NodeJS.Signals) => {
    const pid = child.pid!;
    child.kill(signal);
    if (!(await waitForExit(pid, 5000))) child.kill('SIGKILL');
    live.delete(pid);
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    kill: () => end('SIGKILL'),
    restart: launch,
    config: async (key) => {
      const probe = new Redis(`redis://127.0.0.1:${port}`);
      try {
        return (await probe.config('GET', key))[1] ?? '';
      } finally {
        probe.disconnect();
      }
    },
    stop: async () => {
      await end('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A temporary directory for a function's files: readable by everyone, as
 * they must be for a sandbox that runs as a user of its own.
 */
export function imageDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o755);
  return dir;
}

export interface TestEtcd {
  endpoint: string;
  pid: number;
  stop: () => Promise<void>;
}

/** A single-member etcd (`etcd` from etcd-server) on random loopback ports, its data in a temp dir. */
export async function startEtcd(): Promise<TestEtcd> {
  const dir = tempDir('baton-etcd-');
  const etcd = await startLocalEtcd({
    dataDir: join(dir, 'data'),
    host: '127.0.0.1',
    clientPort: 0,
    peerPort: 0,
  });
  const pid = etcd.child.pid!;
  live.add(pid);
  return {
    endpoint: etcd.endpoint,
    pid,
    stop: async () => {
      await etcd.stop();
      live.delete(pid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether `haproxy` can be run here (the suites that need it skip with this reason otherwise). */
export const HAPROXY_MISSING: string | false =
  spawnSync('haproxy', ['-v']).error === undefined
    ? false
    : 'haproxy is not installed (apt-get install haproxy)';

/** Whether `etcd` can be run here (the suites that need it skip with this reason otherwise). */
export const ETCD_MISSING: string | false =
  spawnSync('etcd', ['--version']).error === undefined
    ? false
    : 'etcd is not installed (apt-get install etcd-server)';

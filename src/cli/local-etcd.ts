/**
 * A single-member etcd on this machine, for `baton up --control-planes N`
 * (through `baton etcd`) and for the tests: the `etcd` executable from the
 * PATH (Debian package etcd-server), its data under a directory of ours,
 * tuned for one machine (50 ms heartbeats, 500 ms election time-out, so a
 * lease can be as short as one second). It dies with its parent (setpriv
 * --pdeathsig, where util-linux has it).
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { spawnTied } from '../shared/tied-process.js';
import { mkdirSync } from 'node:fs';
import { InvalidConfigError, errorMessage } from '../shared/errors.js';
import { sleep } from '../shared/time.js';
import { freePort } from '../shared/port-probe.js';

const READY_TIMEOUT_MS = 15_000;

export interface LocalEtcdOptions {
  dataDir: string;
  host: string;
  /** 0: any free port (as for peerPort). */
  clientPort: number;
  peerPort: number;
  /** Receives etcd's own output. */
  onOutput?: (chunk: Buffer) => void;
}

export interface LocalEtcd {
  /** `http://host:port` for clients. */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Times ports picked here are picked again when another process took one first. */
const PORT_ATTEMPTS = 3;

/** Starts etcd and resolves once it answers /health; rejects naming the package when it is missing. */
export async function startLocalEtcd(o: LocalEtcdOptions): Promise<LocalEtcd> {
  if (spawnSync('etcd', ['--version']).error !== undefined)
    throw new InvalidConfigError(
      "etcd is not installed (it runs the control planes' election and store): apt-get install etcd-server",
    );
  // etcd warns about a data directory others can read.
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  const picked = o.clientPort === 0 || o.peerPort === 0;
  for (let attempt = 1; ; attempt++) {
    // etcd cannot bind port 0 itself: ask the kernel for free ones first
    // (another process may take one before etcd binds it: then pick again).
    const clientPort = o.clientPort === 0 ? await freePort(o.host) : o.clientPort;
    const peerPort = o.peerPort === 0 ? await freePort(o.host) : o.peerPort;
    try {
      return await launch(o, clientPort, peerPort);
    } catch (err) {
      if (!picked || attempt >= PORT_ATTEMPTS || !/address already in use/.test(errorMessage(err)))
        throw err;
    }
  }
}

async function launch(
  o: LocalEtcdOptions,
  clientPort: number,
  peerPort: number,
): Promise<LocalEtcd> {
  const client = `http://${o.host}:${clientPort}`;
  const peer = `http://${o.host}:${peerPort}`;
  const args = [
    '--name',
    'baton',
    '--data-dir',
    o.dataDir,
    '--listen-client-urls',
    client,
    '--advertise-client-urls',
    client,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `baton=${peer}`,
    '--heartbeat-interval',
    '50',
    '--election-timeout',
    '500',
    '--logger',
    'zap',
    '--log-level',
    'warn',
  ];
  const child = spawnTied('etcd', args);
  child.stdin.end();
  let tail = '';
  const onOutput = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-2000);
    o.onOutput?.(chunk);
  };
  child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(killer);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`etcd exited at start: ${tail.trim().split('\n').pop() ?? ''}`);
    try {
      const res = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: unknown };
      if (body.health === 'true') return { endpoint: client, clientPort, peerPort, child, stop };
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`etcd did not become healthy at ${client}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
    }
    await sleep(50);
  }
}

/**
 * `baton etcd`: a single-member etcd for this machine's control-plane
 * replicas, run as a Baton daemon so that `baton up` supervises it like the
 * others (ready message, logs, restart). etcd itself is the `etcd`
 * executable (Debian package etcd-server); see local-etcd.ts.
 */
import { resolve } from 'node:path';
import { runDaemon } from '../shared/daemon.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { COMMON_OPTIONS, portSpec, stringOption } from '../shared/option-specs.js';
import { startLocalEtcd } from './local-etcd.js';

export const ETCD_OPTIONS = {
  host: stringOption('127.0.0.1', 'address etcd listens on', 'ADDR'),
  'client-port': portSpec(9379, "etcd's client port"),
  'peer-port': portSpec(9380, "etcd's peer port (one member: unused by others)"),
  'data-dir': stringOption('./.baton/etcd', "etcd's data directory", 'DIR'),
  ...COMMON_OPTIONS,
};

export async function runEtcd(argv: string[]): Promise<void> {
  const flags = readFlags(
    argv,
    ETCD_OPTIONS,
    'baton etcd [options]',
    'Run a single-member etcd for control-plane replicas on this machine.',
  );
  if (flags === undefined) return;
  await runDaemon('etcd', async () => {
    const o = compileSpecs(ETCD_OPTIONS, flags);
    const etcd = await startLocalEtcd({
      dataDir: resolve(o['data-dir']),
      host: o.host,
      clientPort: o['client-port'],
      peerPort: o['peer-port'],
      onOutput: (chunk) => process.stderr.write(chunk),
    });
    let stopping = false;
    // etcd dying takes this daemon with it, so the supervisor sees it and restarts both.
    etcd.child.once('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`baton etcd: etcd exited (${signal ?? `code ${code}`})\n`);
      process.exit(1);
    });
    return {
      summary: `etcd at ${etcd.endpoint}`,
      addresses: {
        endpoint: etcd.endpoint,
        clientPort: etcd.clientPort,
        peerPort: etcd.peerPort,
        pid: etcd.child.pid,
      },
      close: () => {
        stopping = true;
        return etcd.stop();
      },
    };
  });
}

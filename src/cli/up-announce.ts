/** What `baton up` says once the cluster is up: a banner (or one JSON line), and a ready message to a supervising parent. */
import { join } from 'node:path';
import type { ReadyMessage } from '../shared/daemon.js';
import type { OptionValues } from '../shared/option-specs.js';
import type { Supervised } from './supervisor.js';
import type { UP_OPTIONS } from './up-options.js';
import { DEFAULT_CP_URL } from './cp-client.js';

type UpOptions = OptionValues<typeof UP_OPTIONS>;

/** Prints where to register and invoke (or one JSON line), and tells a supervising parent. */
export function announce(
  o: UpOptions,
  daemons: readonly Supervised[],
  at: {
    warnings: string[];
    apiTokenFile: string | undefined;
    registration: string;
    proxy: string;
    cpRpc: string;
    etcd: string | undefined;
    dataDir: string;
    logDir: string;
  },
): void {
  const pids = daemons.map((s) => s.child?.pid).filter((p): p is number => p !== undefined);
  const summary = {
    registration: at.registration,
    proxy: at.proxy,
    cpRpc: at.cpRpc,
    controlPlanes: o['control-planes'],
    ...(at.etcd === undefined ? {} : { etcd: at.etcd }),
    workers: o.workers,
    runtime: o.runtime,
    dataDir: at.dataDir,
    logs: at.logDir,
    pid: process.pid,
    pids,
    warnings: at.warnings,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const store =
      at.etcd !== undefined
        ? `etcd at ${at.etcd}`
        : o.store === 'embedded'
          ? join(at.dataDir, 'store')
          : (o['redis-url'] ?? 'redis');
    const replicas =
      o['control-planes'] > 1
        ? `  control:   ${o['control-planes']} control-plane replicas (one leads; the others forward to it)\n`
        : '';
    process.stdout.write(
      `Baton is up.\n` +
        `  register:  POST ${at.registration}/registerService (Dirigent form) or PUT ${at.registration}/v1/functions/NAME (JSON)\n` +
        `  invoke:    ${at.proxy} with 'Host: NAME', or ${at.proxy}/function/NAME/\n` +
        replicas +
        `  workers:   ${o.workers} x ${o.runtime} runtime\n` +
        `  store:     ${store}, logs in ${at.logDir}\n` +
        // The CLI finds the control plane on its default port only: say where it is otherwise.
        `Try: ${at.registration === DEFAULT_CP_URL ? '' : `export BATON_CP=${at.registration}; `}baton deploy hello --image hello && baton invoke hello    (Ctrl-C stops everything)\n`,
    );
    if (at.apiTokenFile !== undefined)
      process.stdout.write(
        `The API asks its token: export BATON_TOKEN=$(cat ${at.apiTokenFile})   (curl: -H "Authorization: Bearer $BATON_TOKEN")\n`,
      );
    for (const w of at.warnings)
      process.stdout.write(`WARNING: sandboxes are not fully isolated: ${w}\n`);
  }
  process.send?.({
    type: 'baton-ready',
    daemon: 'up',
    pid: process.pid,
    addresses: summary,
  } satisfies ReadyMessage);
}

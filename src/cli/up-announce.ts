/** What `baton up` says once the cluster is up: a banner (or one JSON line), and a ready message to a supervising parent. */
import { join, resolve } from 'node:path';
import type { ReadyMessage } from '../shared/daemon.js';
import type { OptionValues } from '../shared/option-specs.js';
import type { Supervised } from './supervisor.js';
import type { UP_OPTIONS } from './up-options.js';
import { DEFAULT_CP_URL, DEFAULT_DP_URL } from './cp-client.js';
import { DEFAULT_DATA_DIR } from '../shared/option-specs.js';
import { EMBEDDED_STORE_DIR } from '../store/keys.js';

type UpOptions = OptionValues<typeof UP_OPTIONS>;

/**
 * The CLI finds the control plane and data plane on their default ports
 * only: elsewhere, the lines that point other shells at this cluster.
 */
function exports(at: { registration: string; proxy: string; dataDir: string }): string {
  const vars = [
    ...(at.registration === DEFAULT_CP_URL ? [] : [`BATON_CP=${at.registration}`]),
    ...(at.proxy === DEFAULT_DP_URL ? [] : [`BATON_DP=${at.proxy}`]),
    ...(at.dataDir === resolve(DEFAULT_DATA_DIR) ? [] : [`BATON_DATA_DIR=${at.dataDir}`]),
  ];
  return vars.length === 0 ? '' : `In other shells: export ${vars.join(' ')}\n`;
}

/** A first command that works with the runtime's images. */
function tryLine(runtime: string): string {
  return runtime === 'containerd'
    ? 'baton image import ./my-function.tar && baton deploy my-fn --image REF --port 8080 && baton invoke my-fn'
    : 'baton deploy hello --image hello && baton invoke hello';
}

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
          ? join(at.dataDir, EMBEDDED_STORE_DIR)
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
        `  store:     ${store}, logs in ${at.logDir} (baton logs --daemon NAME)\n` +
        `  dashboard: ${at.registration}/ui\n` +
        `  metrics:   ${at.registration}/metrics (Prometheus; every daemon's: ${at.registration}/v1/prometheus-targets)\n` +
        exports(at) +
        `Try: ${tryLine(o.runtime)}    (Ctrl-C stops everything)\n`,
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

/** `baton worker`: reads its options, then starts the worker daemons (start.ts). */
import { InvalidConfigError } from '../shared/errors.js';
import { WORKER_SHUTDOWN_TIMEOUT_MS, runDaemon } from '../shared/daemon.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { WORKER_OPTIONS } from './worker-options.js';

/** `baton image`, which works on the containerd runtime's images. */
export { runImage } from './image-command.js';

export const WORKER_USAGE = 'baton worker [options]';
export const WORKER_SUMMARY =
  'Run a worker: creates, deletes and lists sandboxes for the control plane.';

export async function runWorker(argv: string[]): Promise<void> {
  const flags = readFlags(argv, WORKER_OPTIONS, WORKER_USAGE, WORKER_SUMMARY);
  if (flags === undefined) return;
  await runDaemon(
    'worker',
    async () => {
      const o = compileSpecs(WORKER_OPTIONS, flags);
      if (o.count > 1 && o.runtime !== 'simulated')
        throw new InvalidConfigError(
          `--count: ${o.count} workers in one process is only for --runtime simulated`,
        );
      if (o.count > 1 && o['simulated-port'] !== 0)
        throw new InvalidConfigError(
          '--simulated-port: each of the --count workers needs its own workload server; leave it at 0',
        );
      return (await import('./start.js')).startWorkers(o);
    },
    WORKER_SHUTDOWN_TIMEOUT_MS,
  );
}

/** `baton data-plane`: reads its options, then starts the data plane (start.ts). */
import { runDaemon } from '../shared/daemon.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { DATA_PLANE_OPTIONS } from './data-plane-options.js';

export const DATA_PLANE_USAGE = 'baton data-plane [options]';
export const DATA_PLANE_SUMMARY =
  'Run a data plane: the invocation proxy with per-function queues and load balancing.';

export async function runDataPlane(argv: string[]): Promise<void> {
  const flags = readFlags(argv, DATA_PLANE_OPTIONS, DATA_PLANE_USAGE, DATA_PLANE_SUMMARY);
  if (flags === undefined) return;
  await runDaemon('data-plane', async () => {
    const o = compileSpecs(DATA_PLANE_OPTIONS, flags);
    return (await import('./start.js')).startDataPlane(o);
  });
}

/** `baton control-plane`: reads its options, then starts the control plane (start.ts). */
import { runDaemon } from '../shared/daemon.js';
import { InvalidConfigError } from '../shared/errors.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { CONTROL_PLANE_OPTIONS } from './control-plane-options.js';

export const CONTROL_PLANE_USAGE = 'baton control-plane [options]';
export const CONTROL_PLANE_SUMMARY =
  'Run the control plane: function registry, autoscaler, placement, health monitor.';

export async function runControlPlane(argv: string[]): Promise<void> {
  const flags = readFlags(argv, CONTROL_PLANE_OPTIONS, CONTROL_PLANE_USAGE, CONTROL_PLANE_SUMMARY);
  if (flags === undefined) return;
  await runDaemon('control-plane', async () => {
    const o = compileSpecs(CONTROL_PLANE_OPTIONS, flags);
    if (o['heartbeat-interval-ms'] >= o['worker-timeout-ms'])
      throw new InvalidConfigError(
        '--heartbeat-interval-ms: must be shorter than --worker-timeout-ms',
      );
    return (await import('./start.js')).startControlPlane(o);
  });
}

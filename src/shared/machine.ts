/** What this machine offers, as a worker's default schedulable capacity. */
import { cpus, totalmem } from 'node:os';

/** Cores x 1000. */
export function machineCpuMilli(): number {
  return Math.max(1, cpus().length) * 1000;
}

/** Total memory in MiB. */
export function machineMemoryMib(): number {
  return Math.floor(totalmem() / (1024 * 1024));
}

/**
 * How `baton up` divides its workers: into processes (simulated workers share
 * them), ports (each worker a share of --port-range) and the machine's
 * capacity (each worker its share, but simulated ones).
 */
import type { OptionValues } from '../shared/option-specs.js';
import { machineCpuMilli, machineMemoryMib } from '../shared/machine.js';
import type { UP_OPTIONS } from './up-options.js';

type UpOptions = OptionValues<typeof UP_OPTIONS>;

/** Simulated workers that share one process in `baton up`. */
export const SIMULATED_WORKERS_PER_PROCESS = 25;
/**
 * Processes simulated workers are spread over at most (beyond 25 x this
 * many, each holds more; `baton worker --count` takes up to 1000). Measured
 * (`npm run bench:cold -- --workers 5000`, 2026-12-01, 2 cores): 40
 * processes of 125 spent 1212 µs of CPU per cold start at 1000/s and took
 * 15.5 s to register; 10 of 500, 702 µs and 6.2 s (p99 705 -> 303 ms).
 */
const SIMULATED_PROCESSES = 10;

export interface WorkerGroup {
  name: string;
  /** Index of its first worker. */
  first: number;
  count: number;
}

/**
 * Simulated workers do almost nothing each; a process per worker would spend
 * the machine on 100 idle V8 heaps and cold JIT. They share processes,
 * SIMULATED_WORKERS_PER_PROCESS at a time, each still its own worker (id,
 * RPC port, registration, heartbeats, workload server).
 */
export function workerGroups(o: UpOptions): WorkerGroup[] {
  // Many simulated workers: no more than SIMULATED_PROCESSES processes, each with more of them.
  const perProcess =
    o.runtime === 'simulated'
      ? Math.max(SIMULATED_WORKERS_PER_PROCESS, Math.ceil(o.workers / SIMULATED_PROCESSES))
      : 1;
  return Array.from({ length: Math.ceil(o.workers / perProcess) }, (_, g) => {
    const first = g * perProcess;
    const count = Math.min(perProcess, o.workers - first);
    return { name: count === 1 ? `worker-${first + 1}` : `workers-${g + 1}`, first, count };
  });
}

/**
 * Each worker's schedulable capacity: as given, else, for runtimes whose
 * sandboxes run on this machine, the machine's share of each worker (two
 * workers each offering the whole machine would admit twice what it can
 * run); simulated workers stand for machines of their own and keep theirs.
 */
export function workerCapacity(o: UpOptions): { cpuMilli?: number; memoryMib?: number } {
  const shared = o.runtime !== 'simulated';
  const share = (total: number) => Math.max(1, Math.floor(total / o.workers));
  const cpu = o['cpu-capacity'] ?? (shared ? share(machineCpuMilli()) : undefined);
  const memory = o['memory-capacity'] ?? (shared ? share(machineMemoryMib()) : undefined);
  return {
    ...(cpu === undefined ? {} : { cpuMilli: cpu }),
    ...(memory === undefined ? {} : { memoryMib: memory }),
  };
}

/**
 * A worker process's ports: its workers' shares of --port-range (`shares`,
 * one per worker, in order), from its first worker's to its last one's. A
 * process of several simulated workers divides them again, one share each.
 */
export function groupPortRange(shares: readonly string[], g: WorkerGroup): string {
  const first = shares[g.first]!.split('-')[0]!;
  const last = shares[g.first + g.count - 1]!.split('-')[1]!;
  return `${first}-${last}`;
}

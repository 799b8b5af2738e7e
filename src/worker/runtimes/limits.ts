/**
 * What a sandbox of a runtime that runs a process per sandbox (process,
 * containerd) is given and charged: cgroup limits from its function's
 * requests raised to floors it needs to start and serve, the least it is
 * charged in placement, and how many such sandboxes a worker creates at once.
 */
import { availableParallelism } from 'node:os';
import type { FunctionSpec } from '../../shared/function-spec.js';

/** Longest a new sandbox may take to serve. */
export const DEFAULT_READINESS_TIMEOUT_MS = 30_000;
/** SIGTERM to SIGKILL when a sandbox is stopped. */
export const DEFAULT_STOP_GRACE_MS = 2_000;
/** Below these a Node sandbox cannot start or serve steadily; requests under them are raised. */
export const DEFAULT_MIN_CPU_LIMIT_MILLI = 1000;
export const DEFAULT_MIN_MEMORY_LIMIT_MIB = 128;
/**
 * The least milli-CPU a sandbox is charged in placement. Its CPU limit is a
 * cap on bursts, not a reservation: charging it would fit two idle sandboxes
 * on two cores. Its memory limit is charged whole (memory is not shared).
 */
export const DEFAULT_MIN_CPU_REQUEST_MILLI = 25;
/** Processes (threads count) one sandbox may have: a fork bomb stops here. */
export const SANDBOX_MAX_PROCESSES = 1024;

/** Size of a sandbox's private /tmp (its pages also count against its memory limit). */
export const SANDBOX_TMP_MIB = 64;

/** What a sandbox may use: cgroup CPU quota and memory limit (0 = none). */
export interface SandboxLimits {
  cpuMilli: number;
  memoryMib: number;
}

/** The cgroup limits of a sandbox of `spec`: its requests, raised to the floors. */
export function limitsFor(
  spec: Pick<FunctionSpec, 'cpuMilli' | 'memoryMib'>,
  floors: { cpuMilli: number; memoryMib: number },
): SandboxLimits {
  return {
    cpuMilli: Math.max(spec.cpuMilli, floors.cpuMilli),
    memoryMib: Math.max(spec.memoryMib, floors.memoryMib),
  };
}

/** Creations of process sandboxes a worker runs at once: each starts a process that wants a core. */
export function defaultCreationConcurrency(): number {
  return 2 * availableParallelism();
}

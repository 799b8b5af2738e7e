/**
 * A full garbage collection when a daemon is idle, in place of V8's memory
 * reducer, which Baton's daemons run without (`--no-memory-reducer`,
 * BATON_V8_FLAGS). The reducer judges a process idle by its allocation
 * rate and then runs three full mark-compacts about 600 ms apart; under
 * InVitro's 250 cold starts/s it did so in a daemon's first seconds of the
 * step (3-18 ms stops each, the step's worst replies). Here idle means
 * little CPU: under IDLE_CPU_FRACTION of one core in each of the last
 * QUIET_CHECKS checks, the latest just now, when a stop delays next to
 * nothing; and only once the heap has grown by MIN_GARBAGE_BYTES since the
 * last collection, so an idle daemon gives back what a busy spell left
 * (the old generation is first collected at 256 MB) and a quiet one is
 * not collected again and again.
 */
export const IDLE_CHECK_MS = 1_000;
export const QUIET_CHECKS = 10;
export const IDLE_CPU_FRACTION = 0.01;
export const MIN_GARBAGE_BYTES = 16 * 1024 * 1024;

/** Whether to collect: after `quietChecks` quiet checks in a row, with the heap's used bytes now and after the last collection. */
export function idleCollectionDue(
  quietChecks: number,
  heapUsed: number,
  heapAfterLast: number,
): boolean {
  return quietChecks >= QUIET_CHECKS && heapUsed - heapAfterLast >= MIN_GARBAGE_BYTES;
}

export interface IdleCollectorProbes {
  /** The process's CPU time so far, µs. */
  cpuMicros(): number;
  heapUsed(): number;
  /** A full collection; undefined when the process cannot ask for one (started without `--expose-gc`). */
  collect: (() => void) | undefined;
}

const processProbes = (): IdleCollectorProbes => ({
  cpuMicros: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
  heapUsed: () => process.memoryUsage().heapUsed,
  collect: (globalThis as { gc?: () => void }).gc,
});

/** Checks every `periodMs` (the timer does not keep the process alive); returns a stop function. */
export function startIdleCollector(
  periodMs = IDLE_CHECK_MS,
  probes: IdleCollectorProbes = processProbes(),
): () => void {
  const collect = probes.collect;
  if (collect === undefined) return () => undefined;
  let cpuBefore = probes.cpuMicros();
  let heapAfterLast = probes.heapUsed();
  let quiet = 0;
  const timer = setInterval(() => {
    const cpu = probes.cpuMicros();
    quiet = cpu - cpuBefore < periodMs * 1000 * IDLE_CPU_FRACTION ? quiet + 1 : 0;
    const heapUsed = probes.heapUsed();
    cpuBefore = cpu;
    if (idleCollectionDue(quiet, heapUsed, heapAfterLast)) {
      collect();
      heapAfterLast = probes.heapUsed();
      quiet = 0;
      // The collection's own CPU does not count against the next check.
      cpuBefore = probes.cpuMicros();
    } else if (heapUsed < heapAfterLast) heapAfterLast = heapUsed;
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * The isolate runtimes' defaults that their worker options show: here, not in
 * the runtimes, so reading a worker's options does not load the runtimes.
 */

/** CPU time one request may use before its isolate is stopped. */
export const DEFAULT_ISOLATE_CPU_LIMIT_MS = 30_000;
/** A standby sandbox's isolate is given up after this long without a request. */
export const DEFAULT_ISOLATE_IDLE_MS = 60_000;

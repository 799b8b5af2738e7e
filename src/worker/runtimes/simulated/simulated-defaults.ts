/**
 * The simulated runtime's default that its worker options show: here, not in
 * the runtime, so reading a worker's options does not load it.
 */

/** Time one simulated creation takes. */
export const DEFAULT_SIMULATED_DELAY_MS = 40;

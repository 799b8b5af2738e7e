/** Promise helpers for waiting; each takes an AbortSignal where it can wait long. */
import { setTimeout as sleepTimer } from 'node:timers/promises';

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return sleepTimer(ms, undefined, signal === undefined ? undefined : { signal });
}

/** Exponential backoff with full jitter: min(cap, base * 2^attempt) * rand[0.5, 1). */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp * (0.5 + Math.random() * 0.5));
}

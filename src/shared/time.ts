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

/** Waits for `p`, or `ms` at most (the timer is cleared either way); rejects if `p` does first. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

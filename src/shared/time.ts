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

/**
 * Waits for `p`, or `ms` at most (the timer is cleared either way): true if
 * `p` settled in time, false if the time ran out; rejects if `p` does first.
 */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wakes whoever waits for the next change of something, without their polling it. */
export class ChangeSignal {
  #waiting: Array<() => void> = [];

  /** Resolves at the next notify(), or after `ms` at the latest. */
  next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        const i = this.#waiting.indexOf(done);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.push(done);
    });
  }

  notify(): void {
    if (this.#waiting.length === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const done of waiting) done();
  }
}

/** Polling for a condition in tests, bounded in time. */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves once `check` holds; throws "timed out waiting for WHAT" after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  pollMs = 10,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

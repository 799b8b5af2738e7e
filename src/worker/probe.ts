/**
 * Readiness probe: HTTP GET until the sandbox answers anything at all, with
 * exponential backoff starting at 10 ms. Any HTTP status counts as ready (the
 * server is accepting requests); only connection errors retry.
 */
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export const PROBE_INITIAL_DELAY_MS = 10;
export const PROBE_MAX_DELAY_MS = 320;

export interface ProbeOptions {
  host: string;
  port: number;
  path?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Checked between attempts; probing stops with its reason once it returns a string. */
  failure?: () => string | undefined;
}

export type ProbeResult =
  { ready: true; attempts: number } | { ready: false; attempts: number; reason: string };

export async function probeUntilReady(opts: ProbeOptions): Promise<ProbeResult> {
  const deadline = Date.now() + opts.timeoutMs;
  let delay = PROBE_INITIAL_DELAY_MS;
  let attempts = 0;
  for (;;) {
    attempts++;
    if (
      await probeOnce(
        opts.host,
        opts.port,
        opts.path ?? '/health',
        Math.min(1000, Math.max(1, deadline - Date.now())),
      )
    ) {
      return { ready: true, attempts };
    }
    const failed = opts.failure?.();
    if (failed !== undefined) return { ready: false, attempts, reason: failed };
    if (opts.signal?.aborted === true)
      return { ready: false, attempts, reason: 'creation aborted' };
    if (Date.now() + delay > deadline) {
      return {
        ready: false,
        attempts,
        reason: `not ready after ${opts.timeoutMs} ms (${attempts} probes)`,
      };
    }
    try {
      await sleep(
        delay,
        undefined,
        opts.signal === undefined ? undefined : { signal: opts.signal },
      );
    } catch {
      return { ready: false, attempts, reason: 'creation aborted' };
    }
    delay = Math.min(delay * 2, PROBE_MAX_DELAY_MS);
  }
}

function probeOnce(host: string, port: number, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host, port, path, method: 'GET', agent: false, timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', () => resolve(false));
    req.end();
  });
}

/**
 * An open-loop load generator: request i is sent at start + i / rate whether
 * or not earlier ones have answered (so a slow system sees the load a real
 * client population would put on it, not a politely reduced one). Records
 * per-request latency from the actual send, and how late each send was.
 */

export interface ShotResult {
  status: number;
  /** Success as the caller defines it (e.g. 200 and a non-empty body). */
  ok: boolean;
  error?: string;
}

export interface Shot extends ShotResult {
  index: number;
  /** ms since the start of the run. */
  scheduledMs: number;
  sentMs: number;
  latencyMs: number;
}

export interface OpenLoopOptions {
  rate: number;
  durationMs: number;
  /** Sends request `i`; must not throw (return ok: false instead). */
  send: (i: number) => Promise<ShotResult>;
  signal?: AbortSignal;
}

export interface OpenLoopRun {
  shots: Shot[];
  /** Wall time from the first scheduled send to the last answer. */
  elapsedMs: number;
}

export async function runOpenLoop(o: OpenLoopOptions): Promise<OpenLoopRun> {
  const total = Math.floor((o.rate * o.durationMs) / 1000);
  const intervalMs = 1000 / o.rate;
  const shots: Shot[] = new Array<Shot>(total);
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      while (next < total && next * intervalMs <= now && o.signal?.aborted !== true) {
        const i = next++;
        const scheduledMs = i * intervalMs;
        const sentMs = performance.now() - t0;
        pending.push(
          o.send(i).then((r) => {
            shots[i] = {
              ...r,
              index: i,
              scheduledMs,
              sentMs,
              latencyMs: performance.now() - t0 - sentMs,
            };
          }),
        );
      }
      if (next >= total || o.signal?.aborted === true) return resolve();
      const wait = next * intervalMs - (performance.now() - t0);
      if (wait > 1.5) setTimeout(tick, wait - 1);
      else setImmediate(tick);
    };
    tick();
  });
  await Promise.all(pending);
  return { shots: shots.filter((s) => s !== undefined), elapsedMs: performance.now() - t0 };
}

/**
 * Open-loop load: request i is sent at its scheduled time whether or not
 * earlier ones have answered (so a slow system sees the load a real client
 * population would put on it, not a politely reduced one). Records
 * per-request latency from the actual send, and how late each send was.
 * `runSchedule` takes any schedule (a trace's arrival times); `runOpenLoop`
 * is the constant-rate case.
 */

export interface ShotResult {
  status: number;
  /** Success as the caller defines it (e.g. 200 and a non-empty body). */
  ok: boolean;
  error?: string;
}

export interface Timing {
  index: number;
  /** ms since the start of the run. */
  scheduledMs: number;
  sentMs: number;
  latencyMs: number;
}

export type Shot<R extends ShotResult = ShotResult> = R & Timing;

/** A send later than this behind its schedule counts as late (the generator could not keep up). */
export const LATE_SEND_MS = 10;

export interface ScheduleOptions<R extends ShotResult> {
  count: number;
  /** When request `i` is due, in ms from the start; non-decreasing in `i`. */
  atMs: (i: number) => number;
  /** Sends request `i`; must not throw (return ok: false instead). */
  send: (i: number) => Promise<R>;
  /** Called as each request is answered, in completion order. */
  onShot?: (shot: Shot<R>) => void;
  signal?: AbortSignal;
}

export interface ScheduleRun<R extends ShotResult> {
  /** Answered requests, by index (requests never sent after an abort are left out). */
  shots: Array<Shot<R>>;
  /** Wall time from the first scheduled send to the last answer. */
  elapsedMs: number;
}

export async function runSchedule<R extends ShotResult>(
  o: ScheduleOptions<R>,
): Promise<ScheduleRun<R>> {
  const shots = new Array<Shot<R>>(o.count);
  const pending: Array<Promise<void>> = [];
  const t0 = performance.now();
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      while (next < o.count && o.atMs(next) <= now && o.signal?.aborted !== true) {
        const i = next++;
        const scheduledMs = o.atMs(i);
        const sentMs = performance.now() - t0;
        pending.push(
          o.send(i).then((r) => {
            const shot = {
              ...r,
              index: i,
              scheduledMs,
              sentMs,
              latencyMs: performance.now() - t0 - sentMs,
            };
            shots[i] = shot;
            o.onShot?.(shot);
          }),
        );
      }
      if (next >= o.count || o.signal?.aborted === true) return resolve();
      // Wait on a timer, never by spinning: waiting on setImmediate for the
      // last 1.5 ms before each send kept a whole core busy at 1000/s (860 µs
      // of the generator's CPU per request), and on a small machine that
      // core is the one the system under test needs. A timer fires up to
      // about 1 ms late, and whatever is due by then goes out together.
      setTimeout(tick, Math.max(0, o.atMs(next) - (performance.now() - t0)));
    };
    tick();
  });
  await Promise.all(pending);
  return { shots: shots.filter((s) => s !== undefined), elapsedMs: performance.now() - t0 };
}

export interface OpenLoopOptions<R extends ShotResult> {
  rate: number;
  durationMs: number;
  send: (i: number) => Promise<R>;
  signal?: AbortSignal;
}

/** `rate` requests per second for `durationMs`, evenly spaced. */
export function runOpenLoop<R extends ShotResult>(o: OpenLoopOptions<R>): Promise<ScheduleRun<R>> {
  const intervalMs = 1000 / o.rate;
  return runSchedule({
    count: Math.floor((o.rate * o.durationMs) / 1000),
    atMs: (i) => i * intervalMs,
    send: o.send,
    ...(o.signal === undefined ? {} : { signal: o.signal }),
  });
}

export function isLate(t: Timing): boolean {
  return t.sentMs - t.scheduledMs > LATE_SEND_MS;
}

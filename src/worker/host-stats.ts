/**
 * Host CPU and memory use for heartbeats: CPU % of all cores over the last
 * window of at least `minWindowMs`. One per process: the workers a process
 * holds (`baton worker --count`) share the host, and reading it (os.cpus(),
 * ~40 µs) once per heartbeat of each of 5000 simulated workers cost the
 * machine 4 % of a core for the same figure.
 */
import { cpus, freemem, totalmem } from 'node:os';

export interface HostUse {
  cpuPercent: number;
  memoryPercent: number;
}

/** The shortest window a CPU figure covers; a sample asked sooner gets the last one. */
const DEFAULT_MIN_WINDOW_MS = 1_000;

export class HostStats {
  readonly #minWindowMs: number;
  readonly #now: () => number;
  #lastBusy = 0;
  #lastTotal = 0;
  #lastAt: number;
  #last: HostUse;

  constructor(minWindowMs = DEFAULT_MIN_WINDOW_MS, now: () => number = () => performance.now()) {
    this.#minWindowMs = minWindowMs;
    this.#now = now;
    this.#lastAt = now();
    // Until a window has passed: CPU since boot, memory now (not zeros).
    this.#last = this.#read();
  }

  /** CPU use (0..100, all cores) over the window ending now or a moment ago, and memory use (0..100). */
  sample(): HostUse {
    const now = this.#now();
    if (now - this.#lastAt < this.#minWindowMs) return this.#last;
    this.#lastAt = now;
    this.#last = this.#read();
    return this.#last;
  }

  #read(): HostUse {
    let busy = 0;
    let total = 0;
    for (const c of cpus()) {
      const t = c.times;
      busy += t.user + t.nice + t.sys + t.irq;
      total += t.user + t.nice + t.sys + t.irq + t.idle;
    }
    const dBusy = busy - this.#lastBusy;
    const dTotal = total - this.#lastTotal;
    this.#lastBusy = busy;
    this.#lastTotal = total;
    const cpuPercent = dTotal > 0 ? Math.min(100, Math.max(0, (dBusy / dTotal) * 100)) : 0;
    const memoryPercent = Math.min(100, Math.max(0, (1 - freemem() / totalmem()) * 100));
    return { cpuPercent: round1(cpuPercent), memoryPercent: round1(memoryPercent) };
  }
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

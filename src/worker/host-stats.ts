/** Host CPU and memory use for heartbeats: CPU % of all cores since the last sample. */
import { cpus, freemem, totalmem } from 'node:os';

export class HostStats {
  #lastBusy = 0;
  #lastTotal = 0;

  constructor() {
    this.sample();
  }

  /** CPU use (0..100, all cores) since the previous call, and memory use (0..100). */
  sample(): { cpuPercent: number; memoryPercent: number } {
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

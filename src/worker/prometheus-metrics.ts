/**
 * A worker process's Prometheus metrics (docs/metrics.md), one registry for
 * the workers it runs (a simulated worker process runs many), each series
 * labelled by worker: capacity, host use (as in its heartbeats), sandboxes
 * ready and starting (per function, too), creations by outcome with their
 * time, and sandboxes that died on their own.
 */
import {
  daemonRegistry,
  metricsOf,
  type Counter,
  type Histogram,
  type Registry,
} from '../shared/prometheus.js';
import type { WorkerRecord } from '../shared/cluster-objects.js';

/** What a worker shows on each scrape. */
export interface WorkerGauges {
  readonly record: WorkerRecord;
  /** Sandboxes ready, by function. */
  sandboxesByFunction(): Map<string, number>;
  /** Creations under way. */
  readonly starting: number;
  /** Host CPU and memory use, 0..100, at its last heartbeat. */
  readonly usage: { cpuPercent: number; memoryPercent: number };
}

export class WorkerMetrics {
  readonly registry: Registry;
  readonly #workers = new Set<WorkerGauges>();
  readonly #creations: Counter<'worker' | 'outcome'>;
  readonly #creationTime: Histogram<'worker'>;
  readonly #exits: Counter<'worker'>;

  constructor(processMetrics: boolean) {
    const registry = (this.registry = daemonRegistry(processMetrics));
    const m = metricsOf(registry);
    const workers = this.#workers;
    this.#creations = m.counter(
      'baton_worker_sandbox_creations_total',
      'Sandbox creations, by outcome (ok, failed).',
      ['worker', 'outcome'],
    );
    this.#creationTime = m.histogram(
      'baton_worker_sandbox_creation_seconds',
      'Time to create a sandbox until it is ready to serve.',
      ['worker'],
    );
    this.#exits = m.counter(
      'baton_worker_sandbox_exits_total',
      'Ready sandboxes that died on their own (crash, limit), reported to the control plane.',
      ['worker'],
    );
    const perWorker = (name: string, help: string, value: (w: WorkerGauges) => number) =>
      m.gauge(name, help, ['worker'], (set) => {
        for (const w of workers) set({ worker: w.record.id }, value(w));
      });
    perWorker(
      'baton_worker_cpu_capacity_millicores',
      'Schedulable CPU.',
      (w) => w.record.cpuCapacityMilli,
    );
    perWorker(
      'baton_worker_memory_capacity_bytes',
      'Schedulable memory.',
      (w) => w.record.memoryCapacityMib * 1024 * 1024,
    );
    perWorker(
      'baton_worker_host_cpu_ratio',
      'Host CPU use (0..1, all cores), as in the last heartbeat.',
      (w) => w.usage.cpuPercent / 100,
    );
    perWorker(
      'baton_worker_host_memory_ratio',
      'Host memory use (0..1), as in the last heartbeat.',
      (w) => w.usage.memoryPercent / 100,
    );
    perWorker('baton_worker_sandboxes_starting', 'Sandbox creations under way.', (w) => w.starting);
    m.gauge(
      'baton_worker_sandboxes',
      'Ready sandboxes, by function.',
      ['worker', 'function'],
      (set) => {
        for (const w of workers)
          for (const [fn, n] of w.sandboxesByFunction())
            set({ worker: w.record.id, function: fn }, n);
      },
    );
  }

  add(worker: WorkerGauges): void {
    this.#workers.add(worker);
  }

  remove(worker: WorkerGauges): void {
    this.#workers.delete(worker);
  }

  created(worker: string, ok: boolean, seconds: number): void {
    this.#creations.inc({ worker, outcome: ok ? 'ok' : 'failed' });
    if (ok) this.#creationTime.observe({ worker }, seconds);
  }

  exited(worker: string): void {
    this.#exits.inc({ worker });
  }
}

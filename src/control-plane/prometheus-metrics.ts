/**
 * The control plane's Prometheus metrics (docs/metrics.md), served at
 * `/metrics` of its HTTP port: per function its sandboxes by state, the
 * sandboxes the autoscaler wants, in-flight and queued requests as the data
 * planes report them, and sandboxes made; per worker capacity and allocation;
 * cluster-wide sandbox events; the scaling loop's tick time and the store's
 * call time; whether this replica leads. Gauges are read from the cluster
 * state on each scrape.
 */
import {
  daemonRegistry,
  LATENCY_BUCKETS_S,
  metricsOf,
  type Histogram,
  type Registry,
} from '../shared/prometheus.js';
import { HotHistogram, type HistogramCounts } from '../shared/hot-metrics.js';
import type { ClusterState, FunctionRecord, WorkerState } from './cluster-state.js';
import type { OrchestratorCounters } from './sandbox-orchestrator.js';

const SANDBOX_STATES = ['creating', 'ready', 'draining'] as const;

export class ControlPlanePrometheus {
  readonly registry: Registry;
  readonly #tick: Histogram;
  /** Every registration makes a store call: plain counts, read at scrape time. */
  readonly #storeOk: HistogramCounts;
  readonly #storeError: HistogramCounts;

  constructor(
    state: ClusterState,
    counters: OrchestratorCounters,
    leading: () => boolean,
    processMetrics: boolean,
  ) {
    const m = metricsOf((this.registry = daemonRegistry(processMetrics)));
    const perFunction = (name: string, help: string, value: (fn: FunctionRecord) => number) =>
      m.gauge(name, help, ['function'], (set) => {
        for (const fn of state.functions.values()) set({ function: fn.name }, value(fn));
      });
    const perWorker = (name: string, help: string, value: (w: WorkerState) => number) =>
      m.gauge(name, help, ['worker'], (set) => {
        for (const w of state.workers.values()) set({ worker: w.id }, value(w));
      });
    const one = (name: string, help: string, value: () => number) =>
      m.gauge(name, help, [], (set) => set({}, value()));

    one('baton_cp_leader', '1 when this replica leads (or runs alone), else 0.', () =>
      leading() ? 1 : 0,
    );
    one('baton_cp_functions', 'Registered functions.', () => state.functions.size);
    one('baton_cp_workers', 'Workers registered.', () => state.workers.size);
    one('baton_cp_data_planes', 'Data planes registered.', () => state.dataPlanes.size);
    m.gauge(
      'baton_cp_sandboxes',
      'Sandboxes by function and state (creating, ready, draining).',
      ['function', 'state'],
      (set) => {
        for (const fn of state.functions.values()) {
          const counts = { creating: 0, ready: 0, draining: 0 };
          for (const sb of fn.sandboxes.values()) counts[sb.phase]++;
          for (const s of SANDBOX_STATES) set({ function: fn.name, state: s }, counts[s]);
        }
      },
    );
    perFunction(
      'baton_cp_desired_sandboxes',
      'Sandboxes the autoscaler wants.',
      (fn) => fn.desired,
    );
    perFunction(
      'baton_cp_inflight',
      'Requests queued or executing over every data plane, as last reported.',
      (fn) => fn.inflight,
    );
    perFunction(
      'baton_cp_queued',
      'Requests waiting for a sandbox over every data plane, as last reported.',
      (fn) => fn.queued,
    );
    perFunction(
      'baton_cp_function_sandboxes_created',
      'Sandboxes made for the function since it was registered (or since this leader loaded it).',
      (fn) => fn.sandboxesCreated,
    );
    perWorker(
      'baton_cp_worker_cpu_capacity_millicores',
      'Schedulable CPU of the worker.',
      (w) => w.record.cpuCapacityMilli,
    );
    perWorker(
      'baton_cp_worker_cpu_allocated_millicores',
      'CPU placed on the worker.',
      (w) => w.cpuAllocatedMilli,
    );
    perWorker(
      'baton_cp_worker_memory_capacity_bytes',
      'Schedulable memory of the worker.',
      (w) => w.record.memoryCapacityMib * 1024 * 1024,
    );
    perWorker(
      'baton_cp_worker_memory_allocated_bytes',
      'Memory placed on the worker.',
      (w) => w.memoryAllocatedMib * 1024 * 1024,
    );
    perWorker(
      'baton_cp_worker_sandboxes',
      'Sandboxes the worker was asked to make and not yet to delete.',
      (w) => w.askedSandboxes,
    );
    const events: Array<[keyof OrchestratorCounters, string, string]> = [
      ['sandboxesCreated', 'baton_cp_sandboxes_created_total', 'Sandboxes made ready.'],
      [
        'creationFailures',
        'baton_cp_sandbox_creation_failures_total',
        'Sandbox creations that failed.',
      ],
      [
        'sandboxesDeleted',
        'baton_cp_sandboxes_deleted_total',
        'Sandboxes deleted (scaled down, function deleted).',
      ],
      [
        'sandboxesLost',
        'baton_cp_sandboxes_lost_total',
        'Sandboxes that died or went with their worker.',
      ],
      [
        'sandboxesEvicted',
        'baton_cp_sandboxes_evicted_total',
        'Sandboxes replaced for breaking a rule (time-out).',
      ],
      [
        'sandboxesReclaimed',
        'baton_cp_sandboxes_reclaimed_total',
        'Idle sandboxes drained to make room for another function when no worker had it.',
      ],
    ];
    for (const [key, name, help] of events) m.countedElsewhere(name, help, () => counters[key]);
    this.#tick = m.histogram(
      'baton_cp_scaling_tick_seconds',
      "Time of one autoscaling loop tick (every active function's decision).",
    );
    const store = new HotHistogram<'outcome'>(
      this.registry,
      'baton_cp_store_call_seconds',
      'Time of a store call (registration, deletion, membership), by outcome (ok, error).',
      LATENCY_BUCKETS_S,
    );
    this.#storeOk = store.series();
    this.#storeError = store.series();
    store.readFrom(() => [
      [{ outcome: 'ok' }, this.#storeOk],
      [{ outcome: 'error' }, this.#storeError],
    ]);
  }

  /** Runs one scaling tick, timed. */
  timeTick(tick: () => void): void {
    const t0 = performance.now();
    tick();
    this.#tick.observe((performance.now() - t0) / 1000);
  }

  storeCall(seconds: number, ok: boolean): void {
    (ok ? this.#storeOk : this.#storeError).observe(seconds);
  }
}

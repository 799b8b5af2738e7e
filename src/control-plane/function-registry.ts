/**
 * The function registry: registration (written to the store before it is
 * acknowledged; data planes get it shortly after, or when they first ask),
 * deletion (forgotten by the store first, then drained and removed), and
 * what users read back about functions.
 */
import type { Logger } from '../shared/logger.js';
import {
  ConflictError,
  FunctionNotFoundError,
  InvalidArgumentError,
  NotFoundError,
  errorMessage,
} from '../shared/errors.js';
import { sameFunctionSpec, type FunctionSpec } from '../shared/function-spec.js';
import { builtinImage } from '../shared/builtin-images.js';
import type { FunctionDetail, FunctionStatus, LogsReply } from '../shared/http-api.js';
import { DEFAULT_DELETE_DRAIN_TIMEOUT_MS } from '../shared/http-api.js';
import type { ClusterStore } from '../store/store.js';
import { FunctionRecord, type ClusterState, type WorkerState } from './cluster-state.js';
import type { SandboxOrchestrator } from './sandbox-orchestrator.js';
import type { ScalingLoop } from './scaling-loop.js';
import type { StoreWatch } from './store-watch.js';
import { waitAtMost } from '../shared/time.js';

/** Longest a registration waits for data planes to learn the function. */
export const PROPAGATION_WAIT_MS = 2_000;
/**
 * Longest a registration waits for the function's minimum scale to be
 * ready (then it answers anyway: the function is registered, its sandboxes
 * keep coming).
 */
export const FLOOR_WAIT_MS = 2_000;
/**
 * The wait wakes when a sandbox of the function is ready, gone or failed,
 * and at least this often (a placement that found no room says so without
 * a sandbox to count).
 */
const FLOOR_RECHECK_MS = 25;
/** Longest a registration waits for a worker to check its image (a module compiles in well under it). */
const IMAGE_CHECK_DEADLINE_MS = 10_000;

export interface FunctionRegistryOptions {
  state: ClusterState;
  store: ClusterStore;
  storeWatch: StoreWatch;
  orchestrator: SandboxOrchestrator;
  scaling: ScalingLoop;
  logger: Logger;
}

export class FunctionRegistry {
  readonly #o: FunctionRegistryOptions;
  readonly #state: ClusterState;
  readonly #log: Logger;
  readonly #registering = new Map<string, Promise<void>>();

  constructor(options: FunctionRegistryOptions) {
    this.#o = options;
    this.#state = options.state;
    this.#log = options.logger;
  }

  /**
   * Registers a function. Idempotent for an identical spec; ConflictError for
   * a different spec under the same name, or while that name is being deleted;
   * StoreError (nothing registered) when the store cannot take it.
   */
  async register(spec: FunctionSpec): Promise<'created' | 'unchanged'> {
    // Before the checks below: from them to the store write nothing may wait,
    // or two registrations of one name could both pass them.
    if (!this.#state.functions.has(spec.name)) await this.#checkImage(spec);
    for (;;) {
      const pending = this.#registering.get(spec.name);
      if (pending === undefined) break;
      await pending.catch(() => undefined);
    }
    const missing = spec.secrets.filter((name) => !this.#state.secrets.has(name));
    if (missing.length > 0)
      throw new InvalidArgumentError(
        `no secret named ${missing.join(', ')} (set it first: baton secret set NAME)`,
        { field: 'secrets' },
      );
    const existing = this.#state.functions.get(spec.name);
    if (existing !== undefined) {
      if (existing.deleting !== undefined)
        throw new ConflictError(
          `function "${spec.name}" is being deleted; register it again once that finished`,
        );
      if (sameFunctionSpec(existing.spec, spec)) return 'unchanged';
      throw new ConflictError(
        `function "${spec.name}" exists with a different spec; delete it first`,
      );
    }
    const fn = new FunctionRecord(spec);
    const write = this.#o.storeWatch.call(() => this.#o.store.putFunction(spec));
    this.#registering.set(spec.name, write);
    try {
      await write;
    } finally {
      this.#registering.delete(spec.name);
    }
    this.#state.functions.set(spec.name, fn);
    // Data planes get the function with others registered about now; one
    // that asks before that is answered then. One that was just told it does
    // not exist may still remember that: it gets it before the answer.
    let told = false;
    this.#state.forEachFanout((f) => {
      if (f.deniedWithin()) told = f.introduce(spec.name) || told;
      else f.introduceSoon(spec.name);
    });
    if (this.#o.scaling.floor(fn) > 0) this.#o.scaling.activate(fn, true);
    // Answer once no data plane would answer 404 for it, and once its
    // minimum scale is ready, so an invocation right after it is not a cold
    // start.
    await this.#minScaleReady(fn);
    if (told) await this.propagated();
    this.#log.debug({ function: spec.name }, 'function registered');
    return 'created';
  }

  /**
   * Deletes a function: it is forgotten by the store first (if that fails,
   * StoreError and nothing has changed; if the control plane dies after it, a
   * restart deletes the sandboxes of a function it does not know), then data
   * planes stop taking its requests and let queued and in-flight ones finish
   * (up to `drainTimeoutMs`), its sandboxes are drained and deleted, and the
   * data planes forget it.
   */
  async delete(
    name: string,
    drainTimeoutMs = DEFAULT_DELETE_DRAIN_TIMEOUT_MS,
  ): Promise<{ remaining: number }> {
    const fn = this.#state.functions.get(name);
    if (fn === undefined) throw new FunctionNotFoundError(name);
    let remaining = 0;
    fn.deleting ??= (async () => {
      try {
        await this.#o.storeWatch.call(() => this.#o.store.deleteFunction(name));
      } catch (err) {
        fn.deleting = undefined;
        throw err;
      }
      this.#state.active.delete(fn);
      remaining = await this.#drainEverywhere(name, drainTimeoutMs);
      await this.#o.orchestrator.removeAll(fn);
      this.#dropLogs(name);
      this.#state.functions.delete(name);
      this.#state.forEachFanout((f) => f.removeFunction(name));
      await this.propagated();
      this.#log.info({ function: name, remaining }, 'function deleted');
    })();
    await fn.deleting;
    return { remaining };
  }

  list(): FunctionStatus[] {
    return [...this.#state.functions.values()].map(statusOf);
  }

  get(name: string): FunctionDetail {
    const fn = this.#state.functions.get(name);
    if (fn === undefined) throw new FunctionNotFoundError(name);
    const sandboxList = [...fn.sandboxes.values()].map((sb) => ({
      id: sb.id,
      worker: sb.workerId,
      address: sb.phase === 'creating' ? null : `${sb.host}:${sb.port}`,
      state: sb.phase,
      readyAt: sb.readyAt === undefined ? null : new Date(sb.readyAt).toISOString(),
      creationMs: sb.timings === undefined ? null : Math.round(sb.timings.totalMs * 100) / 100,
    }));
    return { ...statusOf(fn), sandboxList };
  }

  /**
   * Output of the function's sandboxes (running and recently exited) from
   * every worker, or of one sandbox. Workers that do not answer are named in
   * `unreachable` rather than failing the whole answer.
   */
  async logs(name: string, sandbox: string | undefined, sinceMs?: number): Promise<LogsReply> {
    if (!this.#state.functions.has(name)) throw new FunctionNotFoundError(name);
    const workers = [...this.#state.workers.values()];
    const answers = await Promise.allSettled(
      workers.map((w) =>
        w.client.sandboxLogs(
          {
            function: name,
            ...(sandbox === undefined ? {} : { sandbox }),
            ...(sinceMs === undefined ? {} : { sinceMs }),
          },
          { deadlineMs: 5_000 },
        ),
      ),
    );
    const reply: LogsReply = { sandboxes: [], unreachable: [] };
    answers.forEach((a, i) => {
      const worker = workers[i]!.record.id;
      if (a.status === 'fulfilled')
        for (const s of a.value.sandboxes) reply.sandboxes.push({ ...s, worker });
      else reply.unreachable.push({ worker, reason: errorMessage(a.reason) });
    });
    if (sandbox !== undefined && reply.sandboxes.length === 0 && reply.unreachable.length === 0)
      throw new NotFoundError(
        `no sandbox ${sandbox} of function "${name}" (running or recently exited)`,
      );
    return reply;
  }

  /**
   * Asks one worker of each runtime whether it can run the spec's image (not
   * a built-in one); an
   * InvalidArgumentError (400) with the reason when none can. Workers that do
   * not answer, or no workers at all, let the registration through: the
   * first creation then reports what is wrong.
   */
  async #checkImage(spec: FunctionSpec): Promise<void> {
    // Built-in images run everywhere: no call on the registration path for them.
    if (builtinImage(spec.image) !== undefined) return;
    const byRuntime = new Map<string, WorkerState>();
    for (const w of this.#state.workers.values())
      if (!byRuntime.has(w.record.runtime)) byRuntime.set(w.record.runtime, w);
    if (byRuntime.size === 0) return;
    const answers = await Promise.allSettled(
      [...byRuntime.values()].map((w) =>
        w.client.checkImage({ spec }, { deadlineMs: IMAGE_CHECK_DEADLINE_MS }),
      ),
    );
    const errors: string[] = [];
    for (const a of answers) {
      if (a.status === 'rejected' || a.value.error === undefined) return;
      errors.push(a.value.error);
    }
    throw new InvalidArgumentError(errors[0]!, { field: 'image' });
  }

  /**
   * Waits (bounded by FLOOR_WAIT_MS) until `minScale` sandboxes of a new
   * function are ready; stops early once a creation failed for it or it is
   * being deleted (the status says why).
   */
  async #minScaleReady(fn: FunctionRecord): Promise<void> {
    if (fn.spec.minScale === 0) return;
    const deadline = performance.now() + FLOOR_WAIT_MS;
    while (fn.ready < fn.spec.minScale && performance.now() < deadline) {
      if (fn.lastFailure !== undefined || fn.deleting !== undefined) return;
      await fn.nextChange(Math.min(FLOOR_RECHECK_MS, deadline - performance.now()));
    }
  }

  /** Workers forget what the deleted function's sandboxes wrote (best effort: their buffers are bounded). */
  #dropLogs(name: string): void {
    for (const w of this.#state.workers.values())
      w.client
        .dropLogs({ function: name })
        .catch((err: unknown) =>
          this.#log.debug({ worker: w.id, err: errorMessage(err) }, 'cannot drop logs'),
        );
  }

  /** Has every data plane refuse new requests for `name` and finish the rest; returns how many did not. */
  async #drainEverywhere(name: string, timeoutMs: number): Promise<number> {
    const results = await Promise.all(
      [...this.#state.dataPlanes.values()].map(async (dp) => {
        try {
          await dp.fanout.flushed();
          const r = await dp.client.drainFunction(
            { name, timeoutMs },
            { deadlineMs: timeoutMs + 5000 },
          );
          return r.remaining;
        } catch (err) {
          this.#log.warn(
            { function: name, dataPlane: dp.record.id, err: errorMessage(err) },
            'drain of a function failed',
          );
          return 0;
        }
      }),
    );
    return results.reduce((a, b) => a + b, 0);
  }

  /** Waits (bounded) until every data plane applied the changes made so far. */
  async propagated(): Promise<void> {
    const behind = [...this.#state.dataPlanes.values()].filter((dp) => !dp.fanout.applied);
    // Usually so for a registration: the data planes answered while the store wrote.
    if (behind.length === 0) return;
    const all = Promise.all(behind.map((dp) => dp.fanout.flushed()));
    if (!(await waitAtMost(all, PROPAGATION_WAIT_MS)))
      this.#log.warn({ waitedMs: PROPAGATION_WAIT_MS }, 'a data plane is slow to apply updates');
  }
}

function statusOf(fn: FunctionRecord): FunctionStatus {
  return {
    spec: fn.spec,
    sandboxes: fn.ready,
    creating: fn.creating,
    draining: fn.sandboxes.size - fn.ready - fn.creating,
    inflight: fn.inflight,
    queued: fn.queued,
    desired: fn.desired,
    sandboxesCreated: fn.sandboxesCreated,
    traffic: fn.trafficTotals(),
    lastFailure: fn.lastFailure ?? null,
  };
}

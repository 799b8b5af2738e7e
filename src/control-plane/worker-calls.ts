/**
 * Calls to workers in batches (the "no lock-step RPC per sandbox" rule):
 * creations and deletions queued for a worker in one event-loop turn go in
 * one `createSandboxes` / `deleteSandboxes` call, and the worker streams each
 * creation's result back as soon as that sandbox is ready. Work that must run
 * in the same turn (the orchestrator's drains) joins the flush.
 */
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import { errorCode, errorMessage } from '../shared/errors.js';
import type { FunctionSpec } from '../shared/function-spec.js';
import type { CreateResult } from '../rpc/contracts/worker.js';
import type { WorkerState } from './cluster-state.js';

const CREATE_DEADLINE_MS = 120_000;

export class WorkerCalls {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onCreated: (result: CreateResult, worker: WorkerState) => void;
  readonly #withCreates = new Set<WorkerState>();
  readonly #withDeletes = new Set<WorkerState>();
  readonly #flushHooks: Array<() => void> = [];
  #scheduled = false;

  constructor(
    clock: Clock,
    logger: Logger,
    /** Each creation's outcome, as the worker reports it (or as its call failed). */
    onCreated: (result: CreateResult, worker: WorkerState) => void,
  ) {
    this.#clock = clock;
    this.#log = logger;
    this.#onCreated = onCreated;
  }

  /** Runs `hook` at every flush, after the creations are sent. */
  onFlush(hook: () => void): void {
    this.#flushHooks.push(hook);
  }

  create(
    worker: WorkerState,
    id: string,
    spec: FunctionSpec,
    standby: boolean,
    secretEnv: Record<string, string> | undefined,
  ): void {
    worker.pendingCreates.push({
      id,
      spec,
      ...(standby ? { standby } : {}),
      ...(secretEnv === undefined ? {} : { secretEnv }),
    });
    this.resume(worker);
  }

  /** Sends the worker's waiting creations at the next flush, unless they must wait still (see #sendCreates). */
  resume(worker: WorkerState): void {
    if (worker.pendingCreates.length === 0) return;
    this.#withCreates.add(worker);
    this.schedule();
  }

  /** Also resumes the worker's waiting creations: the room they wait for may be these sandboxes'. */
  delete(worker: WorkerState, ids: string[]): void {
    if (ids.length === 0) return;
    worker.pendingDeletes.push(...ids);
    this.#withDeletes.add(worker);
    this.resume(worker);
    this.schedule();
  }

  /** Flushes at the end of this event-loop turn (once, however often called). */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      // Deletions first: the room a creation was placed in may be theirs.
      for (const w of this.#withDeletes) this.#sendDeletes(w);
      this.#withDeletes.clear();
      for (const w of this.#withCreates) this.#sendCreates(w);
      this.#withCreates.clear();
      for (const hook of this.#flushHooks) hook();
    });
  }

  #sendCreates(worker: WorkerState): void {
    const batch = worker.pendingCreates;
    if (batch.length === 0) return;
    // Placement counted room that reclaimed sandboxes still hold on it: never
    // ask a worker for more than its capacity. Their deletion (or loss)
    // resumes these creations.
    if (worker.releasedUndeleted > 0 && worker.capabilities.idleHoldsNothing !== true) return;
    worker.pendingCreates = [];
    const settled = new Set<string>();
    worker.client
      .createSandboxes(
        { sandboxes: batch },
        (r) => {
          settled.add(r.id);
          // A worker busy creating may send its heartbeats late; its answers show it is alive.
          worker.lastHeartbeatAt = this.#clock.now();
          this.#onCreated(r, worker);
        },
        { deadlineMs: CREATE_DEADLINE_MS },
      )
      .catch((err: unknown) => {
        // The call failed as a whole (the worker died, or did not answer): the
        // sandboxes it did not answer for may start on another worker.
        for (const { id } of batch) {
          if (settled.has(id)) continue;
          this.#onCreated(
            { ok: false, id, code: errorCode(err), message: errorMessage(err), retryable: true },
            worker,
          );
        }
      });
  }

  #sendDeletes(worker: WorkerState): void {
    const ids = worker.pendingDeletes;
    if (ids.length === 0) return;
    worker.pendingDeletes = [];
    worker.client.deleteSandboxes({ ids }).catch((err: unknown) => {
      this.#log.warn(
        { worker: worker.id, count: ids.length, err: errorMessage(err) },
        'cannot delete sandboxes',
      );
    });
  }
}

/**
 * Asynchronous invocations (shared/async-invocation.ts), kept and run by
 * the acting control plane. A data plane hands one over (`enqueueInvocation`)
 * and answers 202 once it is in the store; the dispatcher here sends it
 * through a data plane like any request (cold starts, traffic splits, the
 * execution time-out apply) and records each attempt's start and end in the
 * store before acting on it, so a control plane that dies loses nothing: the
 * next leader reads every record, and one found running is run again
 * (at-least-once). An attempt fails when the function answers 500 or more,
 * or Baton cannot get an answer (a data plane or sandbox that died, a time-
 * out); it is retried with its function's back-off until its attempts are
 * spent, then dead-lettered. Finished results expire after `resultTtlMs`;
 * dead-lettered ones stay until retried or removed.
 *
 * The queue is the store's record kind `invocations` (LevelDB, Redis, etcd:
 * each write acknowledged once durable) with an index in memory: this
 * control plane is its only consumer, so a log with consumer groups would
 * add nothing but a second copy.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import {
  ConflictError,
  FunctionNotFoundError,
  NotFoundError,
  QueueFullError,
  errorMessage,
} from '../shared/errors.js';
import type { AsyncInvocation } from '../shared/async-invocation.js';
import {
  invocationView,
  postCallback,
  sendThroughDataPlane,
  type Outcome,
} from './async-delivery.js';
import type { ClusterStore } from '../store/store.js';
import type { ClusterState } from './cluster-state.js';
import type { StoreWatch } from './store-watch.js';
import { DEFAULT_ASYNC_MAX_QUEUED, DEFAULT_ASYNC_RESULT_TTL_MS } from './control-plane-options.js';

export { invocationView } from './async-delivery.js';

/** Asynchronous invocations running at once. */
const CONCURRENCY = 64;
/** Request bodies held for queued and running invocations at most (beyond: 503). */
const MAX_QUEUED_BYTES = 256 * 1024 * 1024;
const TICK_MS = 200;
/** Expired results are looked for every this many ticks. */
const EXPIRE_EVERY_TICKS = 50;

export interface AsyncInvocationsOptions {
  state: ClusterState;
  store: ClusterStore;
  storeWatch: StoreWatch;
  clock: Clock;
  logger: Logger;
  maxQueued?: number;
  resultTtlMs?: number;
}

export interface EnqueueInput {
  function: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  bodyBase64: string;
  callbackUrl?: string | undefined;
}

export class AsyncInvocations {
  readonly #o: AsyncInvocationsOptions;
  readonly #records = new Map<string, AsyncInvocation>();
  /** Ids of queued records, oldest first. */
  readonly #queued = new Set<string>();
  #running = 0;
  #timer: NodeJS.Timeout | undefined;
  #loaded = false;
  #nextDataPlane = 0;
  #queuedBytes = 0;
  #ticks = 0;

  constructor(o: AsyncInvocationsOptions) {
    this.#o = o;
  }

  /** Starts dispatching (this control plane acts): loads every record first, retrying until it can. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
    this.#tick();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Takes an invocation; resolves once it is durable. */
  async enqueue(input: EnqueueInput): Promise<AsyncInvocation> {
    if (!this.#o.state.functions.has(input.function))
      throw new FunctionNotFoundError(input.function);
    if (!this.#loaded)
      throw new QueueFullError('asynchronous invocations are not loaded yet; retry');
    const max = this.#o.maxQueued ?? DEFAULT_ASYNC_MAX_QUEUED;
    if (this.#queued.size + this.#running >= max)
      throw new QueueFullError(`${max} asynchronous invocations are waiting already; retry later`);
    const bytes = input.bodyBase64.length;
    if (this.#queuedBytes + bytes > MAX_QUEUED_BYTES)
      throw new QueueFullError(
        `asynchronous invocations waiting hold ${MAX_QUEUED_BYTES >> 20} MiB of bodies already; retry later`,
      );
    const now = this.#o.clock.now();
    const record: AsyncInvocation = {
      id: randomUUID(),
      function: input.function,
      request: {
        method: input.method,
        path: input.path,
        headers: input.headers,
        bodyBase64: input.bodyBase64,
      },
      ...(input.callbackUrl === undefined ? {} : { callbackUrl: input.callbackUrl }),
      state: 'queued',
      attempts: 0,
      acceptedAt: now,
      notBefore: now,
    };
    await this.#o.storeWatch.call(() => this.#o.store.putInvocation(record));
    this.#records.set(record.id, record);
    this.#queued.add(record.id);
    this.#queuedBytes += bytes;
    this.#dispatch();
    return record;
  }

  /**
   * The whole record (a finished one's bodies are read from the store);
   * NotFoundError when there is no such invocation (or its result expired).
   */
  async get(id: string): Promise<AsyncInvocation> {
    const record = this.#known(id);
    if (!isFinal(record)) return record;
    return (await this.#o.storeWatch.call(() => this.#o.store.getInvocation(id))) ?? record;
  }

  #known(id: string): AsyncInvocation {
    const record = this.#records.get(id);
    if (record === undefined)
      throw new NotFoundError(`no asynchronous invocation ${id} (or its result expired)`);
    return record;
  }

  deadLettered(): AsyncInvocation[] {
    return [...this.#records.values()].filter((r) => r.state === 'dead-lettered');
  }

  /** Runs a dead-lettered (or failed) invocation again, its attempts counted afresh. */
  async retry(id: string): Promise<AsyncInvocation> {
    this.#final(id);
    const record = await this.get(id);
    const next: AsyncInvocation = {
      ...record,
      state: 'queued',
      attempts: 0,
      notBefore: this.#o.clock.now(),
    };
    delete next.error;
    delete next.finishedAt;
    await this.#o.storeWatch.call(() => this.#o.store.putInvocation(next));
    this.#records.set(id, next);
    this.#queued.add(id);
    this.#queuedBytes += next.request.bodyBase64.length;
    this.#dispatch();
    return next;
  }

  async remove(id: string): Promise<void> {
    this.#final(id);
    await this.#o.storeWatch.call(() => this.#o.store.deleteInvocation(id));
    this.#records.delete(id);
  }

  #final(id: string): AsyncInvocation {
    const record = this.#known(id);
    if (record.state !== 'dead-lettered' && record.state !== 'failed')
      throw new ConflictError(`invocation ${id} is ${record.state}, not dead-lettered`);
    return record;
  }

  #tick(): void {
    if (!this.#loaded) {
      void this.#load();
      return;
    }
    if (++this.#ticks % EXPIRE_EVERY_TICKS === 0) this.#expire();
    this.#dispatch();
  }

  async #load(): Promise<void> {
    if (this.#loaded) return;
    let records: AsyncInvocation[];
    try {
      records = await this.#o.storeWatch.call(() => this.#o.store.listInvocations());
    } catch (err) {
      this.#o.logger.warn({ err: errorMessage(err) }, 'cannot load asynchronous invocations yet');
      return;
    }
    if (this.#loaded) return;
    for (const r of records.sort((a, b) => a.acceptedAt - b.acceptedAt)) {
      // Cut off by the end of the control plane that ran it: it runs again (at least once).
      if (r.state === 'running') r.state = 'queued';
      this.#records.set(r.id, isFinal(r) ? slim(r) : r);
      if (r.state === 'queued') {
        this.#queued.add(r.id);
        this.#queuedBytes += r.request.bodyBase64.length;
      }
    }
    this.#loaded = true;
    if (records.length > 0)
      this.#o.logger.info(
        { invocations: records.length, queued: this.#queued.size },
        'asynchronous invocations loaded',
      );
    this.#dispatch();
  }

  #dispatch(): void {
    if (this.#timer === undefined || !this.#loaded) return;
    const now = this.#o.clock.now();
    for (const id of this.#queued) {
      if (this.#running >= CONCURRENCY) return;
      const record = this.#records.get(id);
      if (record === undefined || record.state !== 'queued') {
        this.#queued.delete(id);
        continue;
      }
      if (record.notBefore > now) continue;
      this.#queued.delete(id);
      void this.#attempt(record);
    }
  }

  async #attempt(record: AsyncInvocation): Promise<void> {
    this.#running++;
    const started: AsyncInvocation = {
      ...record,
      state: 'running',
      attempts: record.attempts + 1,
      startedAt: this.#o.clock.now(),
    };
    try {
      await this.#o.storeWatch.call(() => this.#o.store.putInvocation(started));
    } catch (err) {
      // Not recorded as started: it waits its turn again.
      this.#running--;
      record.notBefore = this.#o.clock.now() + 1000;
      this.#queued.add(record.id);
      this.#o.logger.warn({ invocation: record.id, err: errorMessage(err) }, 'cannot start');
      return;
    }
    this.#records.set(record.id, started);
    const outcome = await this.#send(started);
    this.#running--;
    const done = this.#next(started, outcome);
    this.#records.set(done.id, isFinal(done) ? slim(done) : done);
    if (done.state === 'queued') this.#queued.add(done.id);
    else this.#queuedBytes -= done.request.bodyBase64.length;
    await this.#o.storeWatch
      .call(() => this.#o.store.putInvocation(done))
      .catch((err: unknown) =>
        this.#o.logger.warn({ invocation: done.id, err: errorMessage(err) }, 'cannot record'),
      );
    if (done.state !== 'queued' && done.callbackUrl !== undefined) void this.#callBack(done);
    this.#dispatch();
  }

  /** The record after an attempt: succeeded, failed for good, queued for the next attempt, or dead-lettered. */
  #next(r: AsyncInvocation, outcome: Outcome): AsyncInvocation {
    const now = this.#o.clock.now();
    const next: AsyncInvocation = { ...r };
    delete next.error;
    if ('response' in outcome) next.response = outcome.response;
    if ('response' in outcome && outcome.response.status < 500)
      return { ...next, state: 'succeeded', finishedAt: now };
    const error =
      'error' in outcome ? outcome.error : `the function answered ${outcome.response.status}`;
    if ('final' in outcome && outcome.final)
      return { ...next, state: 'failed', error, finishedAt: now };
    const spec = this.#o.state.functions.get(r.function)?.spec;
    if (spec === undefined)
      return { ...next, state: 'failed', error: `${error}; the function is gone`, finishedAt: now };
    if (r.attempts >= spec.asyncAttempts)
      return { ...next, state: 'dead-lettered', error, finishedAt: now };
    const backoff = spec.asyncBackoffMs * 2 ** (r.attempts - 1);
    return { ...next, state: 'queued', error, notBefore: now + backoff };
  }

  /** One attempt through a data plane (the next one in turn). */
  #send(r: AsyncInvocation): Promise<Outcome> {
    const dataPlanes = [...this.#o.state.dataPlanes.values()];
    if (dataPlanes.length === 0)
      return Promise.resolve({ error: 'no data plane is registered', final: false });
    const dp = dataPlanes[this.#nextDataPlane++ % dataPlanes.length]!.record;
    return sendThroughDataPlane(dp, r, this.#o.state.functions.get(r.function)?.spec);
  }

  async #callBack(r: AsyncInvocation): Promise<void> {
    if (!(await postCallback(r.callbackUrl!, invocationView(r))))
      this.#o.logger.warn({ invocation: r.id, url: r.callbackUrl }, 'callback failed');
  }

  /** Drops finished results older than their time to live (dead-lettered ones stay). */
  #expire(): void {
    const ttl = this.#o.resultTtlMs ?? DEFAULT_ASYNC_RESULT_TTL_MS;
    const now = this.#o.clock.now();
    for (const r of this.#records.values()) {
      if (r.state !== 'succeeded' && r.state !== 'failed') continue;
      if ((r.finishedAt ?? now) + ttl > now) continue;
      this.#records.delete(r.id);
      void this.#o.storeWatch
        .call(() => this.#o.store.deleteInvocation(r.id))
        .catch(() => this.#records.set(r.id, r));
    }
  }
}

function isFinal(r: AsyncInvocation): boolean {
  return r.state !== 'queued' && r.state !== 'running';
}

/** What is kept in memory of a finished invocation: no bodies (they are in the store). */
function slim(r: AsyncInvocation): AsyncInvocation {
  const out: AsyncInvocation = { ...r, request: { ...r.request, bodyBase64: '' } };
  if (r.response !== undefined) out.response = { ...r.response, bodyBase64: '' };
  return out;
}

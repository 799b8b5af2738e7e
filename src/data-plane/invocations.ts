/**
 * The invocation path once a request's function is known: sent to a free
 * sandbox at once, or queued (FIFO per function, bounded, expired after the
 * function's cold-start time-out) until one is free or ready; forwarded, and
 * the forward cut short when the client leaves or the execution time-out
 * passes; and, when the forward fails, answered with what the failure says
 * (a refused bodiless request goes elsewhere, a time-out evicts the sandbox,
 * a broken-off answer waits briefly to learn how the sandbox ended). Every
 * change of a function's in-flight count goes to the metrics reporter.
 */
import type { Logger } from '../shared/logger.js';
import {
  ColdStartTimeoutError,
  ExecutionTimeoutError,
  QueueFullError,
  SandboxExitedError,
  SandboxUnreachableError,
  type BatonError,
} from '../shared/errors.js';
import { QUEUED_HEADER, START_HEADER } from '../shared/http-headers.js';
import type { Exchange } from './exchange.js';
import type { EndpointState, FunctionState } from './function-state.js';
import type { MetricsReporter } from './metrics-reporter.js';
import type { DataPlaneMetrics } from './prometheus-metrics.js';
import type { TableListener } from './routing-table.js';
import type { Waiter } from './queue.js';
import { ClientGoneError, SandboxRefusedError, forward } from './proxy.js';
import { sendError } from './replies.js';
import { Deadlines } from './deadlines.js';

/** A request that is queued or being proxied. */
export interface Pending {
  ex: Exchange;
  fn: FunctionState<Pending>;
  path: string;
  host: string;
  waiter: Waiter<Pending> | undefined;
  /** When it joined the function's queue (no free sandbox on arrival); undefined if it never waited. */
  queuedAt: number | undefined;
  /** It arrived while the function had no sandbox at all. */
  cold: boolean;
  /** Times it was sent to a sandbox that refused the connection. */
  refused: number;
  /** performance.now() when it arrived. */
  arrivedAt: number;
}

/** A request refused by this many dead sandboxes in a row gets the 502. */
const MAX_REFUSED = 3;
/** Longest a request whose sandbox broke off waits to learn how the sandbox ended. */
const END_REASON_WAIT_MS = 1_000;

const WARM_START = { [START_HEADER]: 'warm' };
const FRESH_START = { [START_HEADER]: 'cold' };
const CLIENT_GONE = new ClientGoneError();

export interface InvocationsOptions {
  metrics: MetricsReporter;
  prometheus: DataPlaneMetrics;
  maxQueue: number;
  logger: Logger;
  /** Stops routing to a sandbox (it refuses connections, or broke a rule). */
  removeEndpoint: (id: string) => void;
  /** Has the control plane replace a sandbox that broke a rule. */
  evict: (ep: EndpointState, code: string, reason: string) => void;
}

export class Invocations implements TableListener<Pending> {
  readonly #o: InvocationsOptions;
  readonly #metrics: MetricsReporter;
  /** Every forward's execution time-out. */
  readonly #deadlines = new Deadlines();
  /** Answered with a status below 400, over all functions. */
  successful = 0;

  constructor(options: InvocationsOptions) {
    this.#o = options;
    this.#metrics = options.metrics;
  }

  /** A new request: counted in the metrics, then routed. */
  admit(p: Pending): void {
    this.#o.prometheus.track(p.fn, p.ex, p.arrivedAt, () => p.cold);
    this.route(p);
  }

  /** Sends a request to a free sandbox of its function, or queues it. */
  route(p: Pending): void {
    const ep = p.fn.queue.length === 0 ? p.fn.pick() : undefined;
    if (ep !== undefined) this.#dispatch(p, ep);
    else this.#enqueue(p);
  }

  // ---- TableListener ----------------------------------------------------------

  /** Sends queued requests to endpoints with free slots, oldest first. */
  endpointsAdded(fn: FunctionState<Pending>): void {
    while (fn.queue.length > 0) {
      const ep = fn.pick();
      if (ep === undefined) break;
      const p = fn.queue.shift()!;
      p.waiter = undefined;
      if (p.ex.gone) continue;
      this.#dispatch(p, ep);
    }
    if (fn.queue.length === 0 && fn.expiryTimer !== undefined) {
      clearTimeout(fn.expiryTimer);
      fn.expiryTimer = undefined;
    }
  }

  failQueue(fn: FunctionState<Pending>, err: BatonError): void {
    if (fn.expiryTimer !== undefined) {
      clearTimeout(fn.expiryTimer);
      fn.expiryTimer = undefined;
    }
    if (fn.queue.length === 0) return;
    for (const p of fn.queue.drain()) {
      p.waiter = undefined;
      sendError(p.ex, err);
    }
    this.#metrics.changed(fn, quietOr(fn));
    fn.notifyIfIdle();
  }

  functionRemoved(fn: FunctionState<Pending>): void {
    this.#metrics.forget(fn);
    this.#o.prometheus.forget(fn.name);
  }

  reset(): void {
    // Nothing waits on a reset here; the router releases the requests it held.
  }

  // ---- queue -----------------------------------------------------------------

  #enqueue(p: Pending): void {
    const fn = p.fn;
    if (fn.queue.length >= this.#o.maxQueue)
      return sendError(
        p.ex,
        new QueueFullError(`function "${fn.name}" has ${fn.queue.length} requests waiting`),
      );
    const first = fn.queue.length === 0;
    p.queuedAt = performance.now();
    p.cold = fn.endpoints.length === 0;
    p.waiter = fn.queue.push(p, Date.now());
    p.ex.onClose(() => {
      if (p.waiter !== undefined && fn.queue.remove(p.waiter)) {
        p.waiter = undefined;
        this.#metrics.changed(fn, quietOr(fn));
        fn.notifyIfIdle();
      }
    });
    this.#scheduleExpiry(fn);
    this.#metrics.changed(fn, !first ? 'periodic' : p.cold ? 'now' : 'waiting');
  }

  #scheduleExpiry(fn: FunctionState<Pending>): void {
    if (fn.expiryTimer !== undefined) return;
    const head = fn.queue.peek();
    if (head === undefined) return;
    const delay = Math.max(0, head.enqueuedAt + fn.route.coldStartTimeoutMs - Date.now());
    fn.expiryTimer = setTimeout(() => {
      fn.expiryTimer = undefined;
      this.#expire(fn);
    }, delay);
  }

  #expire(fn: FunctionState<Pending>): void {
    const now = Date.now();
    const timeout = fn.route.coldStartTimeoutMs;
    let expired = 0;
    for (
      let head = fn.queue.peek();
      head !== undefined && head.enqueuedAt + timeout <= now;
      head = fn.queue.peek()
    ) {
      const p = fn.queue.shift()!;
      p.waiter = undefined;
      expired++;
      sendError(
        p.ex,
        new ColdStartTimeoutError(`no sandbox of "${fn.name}" became ready within ${timeout} ms`),
      );
    }
    if (expired > 0) {
      this.#o.logger.warn({ function: fn.name, expired, timeoutMs: timeout }, 'cold-start timeout');
      this.#metrics.changed(fn, quietOr(fn));
      fn.notifyIfIdle();
    }
    this.#scheduleExpiry(fn);
  }

  // ---- forwarding ----------------------------------------------------------------

  #dispatch(p: Pending, ep: EndpointState): void {
    const fn = p.fn;
    ep.inflight++;
    fn.executing++;
    this.#metrics.changed(fn, quietOr(fn));
    const sentAt = performance.now();
    this.#o.prometheus.dispatched(fn.name, p.arrivedAt, p.queuedAt, sentAt);
    const fresh = ep.endpoint.freshPerRequest === true;
    const start =
      p.queuedAt === undefined
        ? fresh
          ? FRESH_START
          : WARM_START
        : {
            [START_HEADER]: p.cold || fresh ? 'cold' : 'queued',
            [QUEUED_HEADER]: (sentAt - p.queuedAt).toFixed(2),
          };
    const f = forward(
      ep.pool,
      p.ex,
      p.path,
      p.host,
      ep.id,
      start,
      ep.endpoint.reportsColdStart === true,
    );
    // Cut short when the client leaves (the sandbox's slot is free at once)
    // or when the function's execution time-out passes.
    const onClose = () => {
      if (!p.ex.finished) f.abort(CLIENT_GONE);
    };
    p.ex.onClose(onClose);
    const timeoutMs = fn.route.timeoutMs;
    const deadline = this.#deadlines.add(timeoutMs, () =>
      f.abort(
        new ExecutionTimeoutError(
          `function "${fn.name}" did not answer within its time-out of ${timeoutMs} ms (sandbox ${ep.id})`,
        ),
      ),
    );
    const settled = () => {
      this.#deadlines.delete(deadline);
      p.ex.offClose(onClose);
    };
    f.done.then(
      (r) => {
        settled();
        if (r.status < 400) {
          fn.successful++;
          this.successful++;
        }
        this.#finished(fn, ep, sentAt);
      },
      (err: unknown) => {
        settled();
        this.#failed(p, ep, err, sentAt);
      },
    );
  }

  /** A forward that did not complete: answer what can be answered, and act on what it says of the sandbox. */
  #failed(p: Pending, ep: EndpointState, err: unknown, sentAt: number): void {
    const fn = p.fn;
    if (err instanceof ClientGoneError) return this.#finished(fn, ep, sentAt);
    if (err instanceof ExecutionTimeoutError) {
      // The sandbox may still be burning: nothing more goes to it, and the
      // control plane replaces it.
      sendError(p.ex, err);
      this.#finished(fn, ep, sentAt);
      this.#o.evict(
        ep,
        err.code,
        `an invocation passed the execution time-out of ${fn.route.timeoutMs} ms`,
      );
      return;
    }
    // A sandbox that refuses connections is dead (its exit is on the way
    // from its worker): stop sending to it, and send a request that never
    // reached it to another sandbox or the queue rather than fail it.
    const refused = err instanceof SandboxRefusedError;
    if (refused) this.#o.removeEndpoint(ep.id);
    const retry = refused && !p.ex.hasBody && ++p.refused < MAX_REFUSED;
    this.#finished(fn, ep, sentAt);
    if (retry) {
      if (!p.ex.gone) this.route(p);
      return;
    }
    if (!(err instanceof SandboxUnreachableError) || refused) return sendError(p.ex, err);
    // Broken off: if the sandbox died, its worker's report is on its way;
    // the client is told how it ended rather than "other side closed".
    void ep
      .whenEnded(END_REASON_WAIT_MS)
      .then((reason) =>
        sendError(
          p.ex,
          reason === undefined
            ? err
            : new SandboxExitedError(
                `sandbox ${ep.id} of "${fn.name}" ended while serving the request: ${reason}`,
              ),
        ),
      );
  }

  /** A sandbox is done with a request sent to it at `sentAt`. */
  #finished(fn: FunctionState<Pending>, ep: EndpointState, sentAt: number): void {
    ep.release();
    fn.executing--;
    fn.served(performance.now() - sentAt);
    if (fn.queue.length > 0) this.endpointsAdded(fn);
    this.#metrics.changed(fn, quietOr(fn));
    fn.notifyIfIdle();
  }
}

/** A function with nothing in flight any more is reported soon; other changes wait for the interval. */
function quietOr(fn: FunctionState<unknown>): 'soon' | 'periodic' {
  return fn.inflight === 0 ? 'soon' : 'periodic';
}

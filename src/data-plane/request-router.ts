/**
 * Where an arriving request goes: its function by `Host` (HTTP/2:
 * `:authority`, port stripped; Dirigent's convention) or by
 * `/function/NAME/...` (the prefix is stripped), else the data plane's own
 * `/health` and `/metrics`. Until the control plane's first function table
 * arrives, a request for a function the data plane does not know is held
 * (bounded) rather than told the function does not exist; after it, the
 * control plane is asked for the function (function-lookup.ts).
 */
import {
  FunctionDrainingError,
  FunctionNotFoundError,
  InvalidArgumentError,
  QueueFullError,
  UnavailableError,
  errorMessage,
  type BatonError,
} from '../shared/errors.js';
import type { Exchange } from './exchange.js';
import type { FunctionLookup } from './function-lookup.js';
import type { FunctionState } from './function-state.js';
import type { RoutingTable } from './routing-table.js';
import type { Invocations, Pending } from './invocations.js';
import { sendError, sendJson } from './replies.js';
import { isAsync, takeAsync, type AsyncHandOver } from './async-intake.js';
import { isDirigentAsync } from './dirigent-async.js';
import { INVOCATION_ID_HEADER } from '../shared/async-invocation.js';

/** Longest a request waits for the control plane's first function table before a retryable 503. */
export const DEFAULT_TABLE_WAIT_MS = 5_000;
/** An asynchronous invocation's state (the `Location` of a 202). */
const INVOCATIONS_PATH = '/v1/invocations/';

/** A request that arrived before the first function table. */
interface Held {
  ex: Exchange;
  timer: NodeJS.Timeout;
}

export interface RequestRouterOptions {
  table: RoutingTable<Pending>;
  invocations: Invocations;
  /** Asks the control plane for a function the table does not have. */
  lookup: FunctionLookup;
  /** Most requests held for the table. */
  maxHeld: number;
  tableWaitMs: number;
  /** Hands an asynchronous invocation to the control plane (async-intake.ts). */
  handOver: (input: AsyncHandOver) => Promise<{ id: string }>;
  /** An asynchronous invocation's state and result, from the control plane. */
  invocation: (id: string) => Promise<unknown>;
  /** Dirigent's async mode: every request is asynchronous (dirigent-async.ts). */
  asyncMode?: boolean;
}

export class RequestRouter {
  readonly #o: RequestRouterOptions;
  /** Requests waiting for the first function table; undefined once it arrived. */
  #held: Set<Held> | undefined = new Set();

  constructor(options: RequestRouterOptions) {
    this.#o = options;
  }

  /** Whether the first function table has arrived. */
  get hasTable(): boolean {
    return this.#held === undefined;
  }

  /** `looked`: the control plane was asked about its function since it arrived. */
  onRequest(ex: Exchange, looked = false): void {
    const { table } = this.#o;
    const authority = ex.authority;
    const hostName = stripPort(authority ?? '');
    let fn: FunctionState<Pending> | undefined = table.function(hostName);
    let path = ex.url;
    let host = authority ?? hostName;
    if (fn === undefined) {
      if (path.startsWith('/function/')) {
        const rest = path.slice('/function/'.length);
        const slash = rest.search(/[/?]/);
        const name = slash < 0 ? rest : rest.slice(0, slash);
        fn = table.function(name);
        if (fn === undefined) return this.#unknown(ex, name, looked);
        path = slash < 0 ? '/' : rest[slash] === '?' ? `/${rest.slice(slash)}` : rest.slice(slash);
        host = name;
      } else if (path === '/health') {
        if (!this.hasTable)
          return sendError(
            ex,
            new UnavailableError('no function table from the control plane yet'),
          );
        return ex.reply(200, { 'content-type': 'text/plain' }, 'OK\n');
      } else if (path === '/metrics' || path.startsWith('/metrics?')) {
        return this.#serveMetrics(path, ex, looked);
      } else if (path.startsWith(INVOCATIONS_PATH)) {
        // Where a 202's Location points: served here too, from the control plane.
        const id = decodeURIComponent(path.slice(INVOCATIONS_PATH.length).split('?')[0]!);
        this.#o.invocation(id).then(
          (view) => sendJson(ex, view),
          (err: unknown) => sendError(ex, err),
        );
        return;
      } else {
        return this.#unknown(ex, hostName, looked);
      }
    }
    if (fn.draining)
      return sendError(ex, new FunctionDrainingError(`function "${fn.name}" is being deleted`));
    // An attempt of an asynchronous invocation runs; anything else may be taken as one.
    if (ex.headers[INVOCATION_ID_HEADER] === undefined) {
      if (isAsync(ex)) return takeAsync(ex, fn.name, path, this.#o.handOver);
      if (isDirigentAsync(ex, this.#o.asyncMode === true))
        return takeAsync(ex, fn.name, path, this.#o.handOver, true);
    }
    fn = this.#revision(fn);
    this.#o.invocations.admit({
      ex,
      fn,
      path,
      host,
      waiter: undefined,
      queuedAt: undefined,
      cold: false,
      refused: 0,
      arrivedAt: performance.now(),
    });
  }

  /** The revision a request for `fn` goes to, by the weights of its split (itself without one). */
  #revision(fn: FunctionState<Pending>): FunctionState<Pending> {
    const split = fn.route.split;
    if (split === undefined) return fn;
    let pick = Math.random() * 100;
    for (const { function: name, weight } of split) {
      pick -= weight;
      if (pick < 0) return this.#o.table.function(name) ?? fn;
    }
    return fn;
  }

  /** Routes the held requests again (a table arrived) or answers them with `err`. */
  release(err?: BatonError): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    for (const h of held) {
      clearTimeout(h.timer);
      if (err === undefined) this.onRequest(h.ex);
      else sendError(h.ex, err);
    }
  }

  /**
   * Asks the control plane for a function the table does not have (unless
   * it said lately that it holds none of that name), then routes `ex` again
   * (now with the function in the table, if it exists), or answers 503 (the
   * control plane cannot be asked).
   */
  #lookUp(ex: Exchange, name: string): void {
    const lookup = this.#o.lookup;
    if (lookup.absent(name)) return this.onRequest(ex, true);
    if (lookup.full(name))
      return sendError(ex, new QueueFullError('too many function names are being looked up'));
    lookup.lookup(name).then(
      () => {
        if (!ex.gone) this.onRequest(ex, true);
      },
      (err: unknown) =>
        sendError(
          ex,
          new UnavailableError(
            `cannot ask the control plane for function "${name}" (${errorMessage(err)}); retry`,
          ),
        ),
    );
  }

  /**
   * A function the data plane does not know: held until the first table,
   * then looked up once; 404 when the control plane does not hold it.
   */
  #unknown(ex: Exchange, name: string, looked: boolean): void {
    if (this.hasTable) {
      if (looked) return sendError(ex, new FunctionNotFoundError(name));
      return this.#lookUp(ex, name);
    }
    const held = this.#held!;
    if (held.size >= this.#o.maxHeld)
      return sendError(ex, new QueueFullError('too many requests wait for the function table'));
    const waitMs = this.#o.tableWaitMs;
    const h: Held = {
      ex,
      timer: setTimeout(() => {
        held.delete(h);
        sendError(
          ex,
          new UnavailableError(
            `the data plane has had no function table from the control plane for ${waitMs} ms; retry`,
          ),
        );
      }, waitMs),
    };
    held.add(h);
    ex.onClose(() => {
      clearTimeout(h.timer);
      held.delete(h);
    });
  }

  /** Dirigent's JSON: `{SuccessfulInvocations, Inflight, QueueDepth}`, for one function with `?service=`. */
  #serveMetrics(path: string, ex: Exchange, looked: boolean): void {
    const service = new URLSearchParams(path.slice('/metrics'.length).replace(/^\?/, '')).get(
      'service',
    );
    if (service !== null) {
      const fn = this.#o.table.function(service);
      if (fn === undefined && !looked && this.hasTable) return this.#lookUp(ex, service);
      if (fn === undefined)
        return sendError(ex, new InvalidArgumentError(`unknown service "${service}"`));
      return sendJson(ex, {
        SuccessfulInvocations: fn.successful,
        Inflight: fn.executing,
        QueueDepth: fn.queue.length,
      });
    }
    let inflight = 0;
    let queued = 0;
    for (const fn of this.#o.table.functions()) {
      inflight += fn.executing;
      queued += fn.queue.length;
    }
    sendJson(ex, {
      SuccessfulInvocations: this.#o.invocations.successful,
      Inflight: inflight,
      QueueDepth: queued,
    });
  }
}

function stripPort(authority: string): string {
  if (authority.startsWith('['))
    return authority.slice(0, authority.indexOf(']') + 1).toLowerCase();
  const colon = authority.indexOf(':');
  return (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
}

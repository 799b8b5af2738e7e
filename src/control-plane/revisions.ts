/**
 * A function's revisions and how its traffic is shared among them. Each
 * revision is a function of its own with an immutable spec: revision 1 is
 * the function's name, revision N > 1 is NAME@N. Revision 1's record holds
 * the split (stored as a `traffic` record), which every data plane follows
 * when it picks where a request for NAME goes (FunctionRoute.split).
 *
 * Deploying a changed spec under an existing name (`PUT /v1/functions/NAME`)
 * makes the next revision, gets it as many ready sandboxes as the revisions
 * taking traffic have (at least one), and only then moves all traffic to it:
 * requests already on the old revision finish there, and its sandboxes are
 * drained as its autoscaler sees no more traffic. A revision that cannot
 * start (its sandboxes fail, or are not ready within its cold-start time-out)
 * is removed and traffic stays where it was. Setting a split (rollback is a
 * split of 100 to one revision) warms each revision that gains traffic and
 * has no ready sandbox first. Dirigent's form registration keeps its
 * meaning: a changed spec there is still a 409.
 */
import type { Logger } from '../shared/logger.js';
import type { Clock } from '../shared/clock.js';
import {
  ConflictError,
  FunctionNotFoundError,
  InvalidArgumentError,
  SandboxStartError,
  UnavailableError,
} from '../shared/errors.js';
import {
  parseRevisionName,
  revisionName,
  sameFunctionSpec,
  type FunctionSpec,
} from '../shared/function-spec.js';
import { trafficSplitSchema, type TrafficSplit } from '../shared/traffic.js';
import type { ClusterStore } from '../store/store.js';
import type { ClusterState, FunctionRecord } from './cluster-state.js';
import type { FunctionRegistry } from './function-registry.js';
import type { ScalingLoop } from './scaling-loop.js';
import type { StoreWatch } from './store-watch.js';

/** How long a revision that took over keeps its warm sandboxes, while the autoscaler learns its traffic. */
const WARM_GRACE_MS = 60_000;
/** The wait for warm sandboxes wakes when one of them changes, and at least this often. */
const WARM_RECHECK_MS = 50;

export interface RevisionInfo {
  revision: number;
  /** The function name its sandboxes run as. */
  function: string;
  image: string;
  /** Percent of the function's requests it takes. */
  weight: number;
  sandboxes: number;
}

export interface RevisionsOptions {
  state: ClusterState;
  store: ClusterStore;
  storeWatch: StoreWatch;
  registry: FunctionRegistry;
  scaling: ScalingLoop;
  clock: Clock;
  logger: Logger;
}

export class Revisions {
  readonly #o: RevisionsOptions;
  /** Functions whose revision or split is being changed: one change at a time. */
  readonly #changing = new Set<string>();

  constructor(o: RevisionsOptions) {
    this.#o = o;
  }

  /**
   * Registers a new function, or rolls out a changed spec of an existing one
   * as its next revision (see above). The spec of the newest revision again
   * is a no-op.
   */
  async deploy(
    spec: FunctionSpec,
  ): Promise<{ outcome: 'created' | 'unchanged' | 'updated'; revision: number }> {
    const primary = this.#o.state.functions.get(spec.name);
    if (primary === undefined)
      return { outcome: await this.#o.registry.register(spec), revision: 1 };
    const newest = this.#revisions(spec.name).at(-1)!;
    const revision = parseRevisionName(newest.name).revision;
    if (sameFunctionSpec({ ...newest.spec, name: spec.name }, spec)) {
      const split = primary.split ?? [{ revision: 1, weight: 100 }];
      if (split.some((s) => s.revision === revision && s.weight === 100))
        return { outcome: 'unchanged', revision };
      // The newest revision, after a rollback or a split: deploying it again makes it serve.
      await this.setTraffic(spec.name, { [revision]: 100 });
      return { outcome: 'updated', revision };
    }
    return this.#change(primary, async () => {
      const next = revision + 1;
      const name = revisionName(spec.name, next);
      await this.#o.registry.register({ ...spec, name });
      const fn = this.#o.state.functions.get(name)!;
      const target = Math.min(Math.max(1, this.#servingReady(primary)), spec.maxScale ?? Infinity);
      try {
        await this.#warm([{ fn, target }]);
      } catch (err) {
        await this.#o.registry.delete(name, 0).catch(() => undefined);
        throw err;
      }
      await this.#setSplit(primary, [{ revision: next, weight: 100 }]);
      this.#o.logger.info({ function: spec.name, revision: next }, 'revision rolled out');
      return { outcome: 'updated' as const, revision: next };
    });
  }

  /** Shares the function's requests among its revisions by percent (`{"2": 90, "3": 10}`). */
  async setTraffic(name: string, input: unknown): Promise<TrafficSplit> {
    const primary = this.#primary(name);
    const split = parseSplit(input);
    for (const s of split)
      if (!this.#o.state.functions.has(revisionName(name, s.revision)))
        throw new InvalidArgumentError(`function "${name}" has no revision ${s.revision}`, {
          field: 'split',
        });
    return this.#change(primary, async () => {
      const gaining = split
        .filter((s) => s.weight > 0)
        .map((s) => this.#o.state.functions.get(revisionName(name, s.revision))!)
        .filter((fn) => fn.ready === 0)
        .map((fn) => ({ fn, target: 1 }));
      if (gaining.length > 0) await this.#warm(gaining);
      await this.#setSplit(primary, split);
      this.#o.logger.info({ function: name, split }, 'traffic split set');
      return split;
    });
  }

  /** Every revision of a function, oldest first, with its share of the traffic. */
  list(name: string): RevisionInfo[] {
    const primary = this.#primary(name);
    const split = primary.split ?? [{ revision: 1, weight: 100 }];
    return this.#revisions(name).map((fn) => {
      const { revision } = parseRevisionName(fn.name);
      return {
        revision,
        function: fn.name,
        image: fn.spec.image,
        weight: split.find((s) => s.revision === revision)?.weight ?? 0,
        sandboxes: fn.ready,
      };
    });
  }

  /** Deletes the function with every revision and its split. */
  async delete(name: string, drainTimeoutMs?: number): Promise<{ remaining: number }> {
    if (name.includes('@'))
      throw new InvalidArgumentError(
        `"${name}" is a revision: delete the function "${parseRevisionName(name).name}" (its revisions go with it), or set its traffic elsewhere`,
      );
    if (!this.#o.state.functions.has(name)) throw new FunctionNotFoundError(name);
    let remaining = 0;
    for (const fn of this.#revisions(name).reverse()) {
      if (fn.name === name) continue;
      remaining += (await this.#o.registry.delete(fn.name, drainTimeoutMs)).remaining;
    }
    remaining += (await this.#o.registry.delete(name, drainTimeoutMs)).remaining;
    await this.#o.storeWatch.call(() => this.#o.store.deleteTraffic(name));
    return { remaining };
  }

  #primary(name: string): FunctionRecord {
    const primary = name.includes('@') ? undefined : this.#o.state.functions.get(name);
    if (primary === undefined) throw new FunctionNotFoundError(name);
    return primary;
  }

  #revisions(name: string): FunctionRecord[] {
    return [...this.#o.state.functions.values()]
      .filter((fn) => fn.name === name || fn.name.startsWith(`${name}@`))
      .sort((a, b) => parseRevisionName(a.name).revision - parseRevisionName(b.name).revision);
  }

  /** Ready sandboxes of the revisions that take traffic now. */
  #servingReady(primary: FunctionRecord): number {
    const split = primary.split ?? [{ revision: 1, weight: 100 }];
    return split
      .filter((s) => s.weight > 0)
      .reduce(
        (n, s) =>
          n + (this.#o.state.functions.get(revisionName(primary.name, s.revision))?.ready ?? 0),
        0,
      );
  }

  async #change<T>(primary: FunctionRecord, change: () => Promise<T>): Promise<T> {
    const name = primary.name;
    if (primary.deleting !== undefined)
      throw new ConflictError(`function "${name}" is being deleted`);
    if (this.#changing.has(name))
      throw new ConflictError(
        `function "${name}" is being changed (a rollout or a traffic split); try again once it finished`,
      );
    this.#changing.add(name);
    try {
      return await change();
    } finally {
      this.#changing.delete(name);
    }
  }

  /**
   * Gets each revision `target` ready sandboxes, kept WARM_GRACE_MS after.
   * SandboxStartError when a creation fails for a reason retrying cannot
   * fix; UnavailableError when they are not ready within the cold-start
   * time-out.
   */
  async #warm(wanted: Array<{ fn: FunctionRecord; target: number }>): Promise<void> {
    const clock = this.#o.clock;
    const timeoutMs = Math.max(...wanted.map(({ fn }) => fn.spec.coldStartTimeoutMs));
    const started = clock.now();
    for (const { fn, target } of wanted) {
      fn.keepWarm(target, started + timeoutMs + WARM_GRACE_MS);
      this.#o.scaling.activate(fn, true);
    }
    const what = (fn: FunctionRecord) => {
      const { name, revision } = parseRevisionName(fn.name);
      return `revision ${revision} of ${name}`;
    };
    try {
      for (;;) {
        const short = wanted.filter(({ fn, target }) => fn.ready < target);
        if (short.length === 0) return;
        for (const { fn } of short) {
          if (fn.deleting !== undefined) throw new ConflictError(`${what(fn)} is being deleted`);
          if (fn.blockedUntil > clock.now())
            throw new SandboxStartError(
              `${what(fn)} cannot start: ${fn.lastFailure?.message ?? 'its creations fail'}; traffic stays where it was`,
            );
        }
        if (clock.now() - started > timeoutMs) {
          const { fn, target } = short[0]!;
          throw new UnavailableError(
            `${what(fn)} has ${fn.ready} of ${target} sandboxes ready after ${timeoutMs} ms${fn.lastFailure === undefined ? '' : ` (${fn.lastFailure.message})`}; traffic stays where it was`,
          );
        }
        await Promise.race(short.map(({ fn }) => fn.nextChange(WARM_RECHECK_MS)));
      }
    } finally {
      for (const { fn, target } of wanted) fn.keepWarm(target, clock.now() + WARM_GRACE_MS);
    }
  }

  async #setSplit(primary: FunctionRecord, split: TrafficSplit): Promise<void> {
    await this.#o.storeWatch.call(() => this.#o.store.putTraffic({ name: primary.name, split }));
    primary.setSplit(split);
    this.#o.state.forEachFanout((f) => f.updateFunction(primary.route));
    await this.#o.registry.propagated();
  }
}

/** `{"2": 90, "3": 10}` (revision: percent) as a split; InvalidArgumentError naming what is wrong. */
function parseSplit(input: unknown): TrafficSplit {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new InvalidArgumentError(
      'split must be an object of revision: percent, e.g. {"2": 90, "3": 10}',
      {
        field: 'split',
      },
    );
  const entries = Object.entries(input as Record<string, unknown>).map(([k, v]) => {
    if (!/^[1-9][0-9]*$/.test(k))
      throw new InvalidArgumentError(`"${k}" is not a revision number`, { field: 'split' });
    return { revision: Number(k), weight: v };
  });
  const parsed = trafficSplitSchema.safeParse(entries);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue?.path[0];
    const which = typeof at === 'number' ? `revision ${entries[at]?.revision}: ` : '';
    throw new InvalidArgumentError(`${which}${issue?.message ?? 'invalid split'}`, {
      field: 'split',
    });
  }
  return parsed.data;
}

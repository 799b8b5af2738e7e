/**
 * Secrets as the control plane keeps them: every value in memory (loaded
 * with the rest of the state, so a sandbox's creation reads no store), each
 * change written to the store before it is taken. Values leave the control
 * plane only towards workers, in the creation of a sandbox whose function
 * names them (see WorkerCalls.create); listings carry names, times and the
 * functions that use them.
 */
import type { Clock } from '../shared/clock.js';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../shared/errors.js';
import { describeZodError } from '../shared/function-spec.js';
import { secretRecordSchema } from '../shared/secret-record.js';
import type { ClusterStore } from '../store/store.js';
import type { ClusterState } from './cluster-state.js';
import type { StoreWatch } from './store-watch.js';

export interface SecretInfo {
  name: string;
  updatedAt: string;
  /** Functions whose spec names it. */
  usedBy: string[];
}

export class SecretBook {
  readonly #state: ClusterState;
  readonly #store: ClusterStore;
  readonly #storeWatch: StoreWatch;
  readonly #clock: Clock;

  constructor(state: ClusterState, store: ClusterStore, storeWatch: StoreWatch, clock: Clock) {
    this.#state = state;
    this.#store = store;
    this.#storeWatch = storeWatch;
    this.#clock = clock;
  }

  /**
   * Sets a secret; sandboxes made from now on get the new value (running
   * ones keep theirs). InvalidArgumentError naming a bad name or value;
   * StoreError (nothing changed) when the store cannot take it.
   */
  async set(name: string, value: unknown): Promise<'created' | 'updated'> {
    const parsed = secretRecordSchema.safeParse({
      name,
      value,
      updatedAt: new Date(this.#clock.now()).toISOString(),
    });
    if (!parsed.success) throw new InvalidArgumentError(describeZodError(parsed.error));
    const existed = this.#state.secrets.has(name);
    await this.#storeWatch.call(() => this.#store.putSecret(parsed.data));
    this.#state.secrets.set(name, parsed.data);
    return existed ? 'updated' : 'created';
  }

  list(): SecretInfo[] {
    return [...this.#state.secrets.keys()].sort().map((name) => this.info(name)!);
  }

  /** One secret as listings show it (never its value); undefined for an unknown name. */
  info(name: string): SecretInfo | undefined {
    const s = this.#state.secrets.get(name);
    return s === undefined
      ? undefined
      : { name, updatedAt: s.updatedAt, usedBy: this.#usedBy(name) };
  }

  /** NotFoundError for an unknown name; ConflictError while a function names it. */
  async delete(name: string): Promise<void> {
    const secret = this.#state.secrets.get(name);
    if (secret === undefined) throw new NotFoundError(`no secret named "${name}"`);
    const users = this.#usedBy(name);
    if (users.length > 0)
      throw new ConflictError(
        `secret "${name}" is used by ${users.join(', ')}; remove it from their specs (or delete them) first`,
      );
    this.#state.secrets.delete(name);
    try {
      await this.#storeWatch.call(() => this.#store.deleteSecret(name));
    } catch (err) {
      if (!this.#state.secrets.has(name)) this.#state.secrets.set(name, secret);
      throw err;
    }
  }

  #usedBy(name: string): string[] {
    return [...this.#state.functions.values()]
      .filter((fn) => fn.spec.secrets.includes(name))
      .map((fn) => fn.spec.name)
      .sort();
  }
}

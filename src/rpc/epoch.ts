/**
 * Fencing of control-plane calls by epoch. A leading control plane's epoch
 * is the etcd revision at which it won its election, so every later leader
 * has a higher one; it sends it with every call to workers and data planes
 * (the `baton-epoch` header). They remember the highest epoch heard and
 * refuse calls from a lower one: a deposed leader that has not noticed yet
 * (paused, partitioned) cannot change what they run or route. A single
 * control plane without an election sends epoch 0, which is always equal.
 */
import type { Logger } from '../shared/logger.js';
import { StaleLeaderError } from '../shared/errors.js';
import type { AdmitCall, CallMetadata } from './contract.js';

export const EPOCH_HEADER = 'baton-epoch';

/** Call metadata carrying the epoch, read as each call is sent. */
export function epochMetadata(epoch: () => number): () => CallMetadata {
  return () => ({ [EPOCH_HEADER]: String(epoch()) });
}

export class EpochFence {
  readonly #log: Logger;
  #highest = 0;

  constructor(logger: Logger) {
    this.#log = logger;
  }

  /** The highest epoch heard so far. */
  get highest(): number {
    return this.#highest;
  }

  /** The server's check (AdmitCall): refuses a call from an older epoch than one already heard. */
  readonly admit: AdmitCall = (metadata) => {
    const raw = metadata(EPOCH_HEADER);
    const epoch = raw === undefined ? 0 : Number(raw);
    if (!Number.isSafeInteger(epoch) || epoch < 0) return;
    if (epoch < this.#highest) {
      this.#log.warn(
        { epoch, leaderEpoch: this.#highest },
        'refused a call from a deposed control plane',
      );
      throw new StaleLeaderError(
        `epoch ${epoch} is older than the leader's (${this.#highest}): this control plane was deposed`,
      );
    }
    if (epoch > this.#highest) {
      if (this.#highest > 0) this.#log.info({ epoch }, 'a new control-plane leader');
      this.#highest = epoch;
    }
  };
}

/**
 * Pre-allocated pool of host ports for sandboxes. Hands out ports in rotation
 * so a port just released is the last to be reused. Not a guarantee that
 * nobody else binds the port: the runtime reports EADDRINUSE as a retryable
 * creation failure and the port goes back to the pool.
 */
import { InvalidConfigError, NoCapacityError } from '../shared/errors.js';

export const DEFAULT_PORT_RANGE = '20000-29999';

export class PortPool {
  readonly #free: number[] = [];
  #head = 0;
  readonly #inUse = new Set<number>();

  constructor(
    readonly first: number,
    readonly last: number,
  ) {
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(last) ||
      first < 1 ||
      last > 65535 ||
      first > last
    ) {
      throw new InvalidConfigError(`--port-range: ${first}-${last} is not a valid port range`);
    }
    for (let p = first; p <= last; p++) this.#free.push(p);
  }

  static parse(range: string): PortPool {
    const m = /^(\d+)-(\d+)$/.exec(range.trim());
    if (m === null) throw new InvalidConfigError(`--port-range: "${range}" is not FIRST-LAST`);
    return new PortPool(Number(m[1]), Number(m[2]));
  }

  get available(): number {
    return this.#free.length - this.#head;
  }

  /** Throws NoCapacityError when every port is in use. */
  acquire(): number {
    if (this.#head >= this.#free.length) {
      throw new NoCapacityError(
        `all ${this.last - this.first + 1} sandbox ports (${this.first}-${this.last}) are in use`,
      );
    }
    const port = this.#free[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#free.length) {
      this.#free.splice(0, this.#head);
      this.#head = 0;
    }
    this.#inUse.add(port);
    return port;
  }

  /** Returns a port; releasing a port that is not in use does nothing. */
  release(port: number): void {
    if (!this.#inUse.delete(port)) return;
    this.#free.push(port);
  }
}

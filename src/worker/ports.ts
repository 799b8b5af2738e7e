/**
 * Pre-allocated pool of host ports for sandboxes. Hands out ports in rotation
 * so a port just released is the last to be reused. Not a guarantee that
 * nobody else binds the port: runtimes whose sandboxes are probed on it skip
 * ports something listens on when they take one (acquireFree), and a runtime
 * reports EADDRINUSE as a retryable creation failure and the port goes back
 * to the pool.
 */
import { InvalidConfigError, NoCapacityError, UnavailableError } from '../shared/errors.js';
import { canListen } from '../shared/port-probe.js';

export const DEFAULT_PORT_RANGE = '20000-29999';
/** Ports acquireFree tries before the creation fails as unavailable. */
export const FREE_PORT_ATTEMPTS = 16;

export class PortPool {
  readonly #free: number[] = [];
  #head = 0;
  readonly #inUse = new Set<number>();

  constructor(
    readonly first: number,
    readonly last: number,
  ) {
    assertPortRange(first, last);
    for (let p = first; p <= last; p++) this.#free.push(p);
  }

  static parse(range: string): PortPool {
    const { first, last } = parsePortRange(range);
    return new PortPool(first, last);
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

  /**
   * A port, as acquire gives, that nothing listens on at `host` now. The
   * readiness probe takes any HTTP answer on a sandbox's port for the
   * sandbox's: on a port another program serves (another cluster's sandbox,
   * a service inside the range) it answered at once, and requests went to
   * that program until the sandbox found its port taken and exited. That can
   * now happen only if the program binds the port during the sandbox's
   * start-up. Ports found taken go back to the pool, behind the others.
   */
  async acquireFree(host: string): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const port = this.acquire();
      if (await canListen(host, port)) return port;
      this.release(port);
      if (attempt === FREE_PORT_ATTEMPTS)
        throw new UnavailableError(
          `sandbox port ${port} was taken, as were the ${attempt - 1} tried before it: other programs listen in ${this.first}-${this.last}; give the worker a --port-range of its own`,
        );
    }
  }

  /** Returns a port; releasing a port that is not in use does nothing. */
  release(port: number): void {
    if (!this.#inUse.delete(port)) return;
    this.#free.push(port);
  }
}

/** FIRST-LAST as numbers; InvalidConfigError naming --port-range when it is not a valid range. */
export function parsePortRange(range: string): { first: number; last: number } {
  const m = /^(\d+)-(\d+)$/.exec(range.trim());
  if (m === null) throw new InvalidConfigError(`--port-range: "${range}" is not FIRST-LAST`);
  const first = Number(m[1]);
  const last = Number(m[2]);
  assertPortRange(first, last);
  return { first, last };
}

function assertPortRange(first: number, last: number): void {
  if (
    !Number.isInteger(first) ||
    !Number.isInteger(last) ||
    first < 1 ||
    last > 65535 ||
    first > last
  )
    throw new InvalidConfigError(`--port-range: ${first}-${last} is not a valid port range`);
}

/**
 * `range` divided into `parts` consecutive ranges of equal size (a
 * remainder is left unused); InvalidConfigError when it has fewer ports
 * than `parts` (`what` names them, e.g. "--workers").
 */
export function splitPortRange(range: string, parts: number, what: string): string[] {
  const { first, last } = parsePortRange(range);
  const each = Math.floor((last - first + 1) / parts);
  if (each < 1) throw new InvalidConfigError(`--port-range: ${range} has fewer ports than ${what}`);
  return Array.from(
    { length: parts },
    (_, i) => `${first + i * each}-${first + (i + 1) * each - 1}`,
  );
}

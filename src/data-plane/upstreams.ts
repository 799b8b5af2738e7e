/**
 * Connection pools to sandbox addresses (`sandbox-pool.ts`), shared by every
 * endpoint at the same address (the simulated runtime serves many sandboxes
 * from one port) and closed when the last such endpoint is gone.
 */
import { SandboxPool } from './sandbox-pool.js';

interface Upstream {
  pool: SandboxPool;
  refs: number;
}

export class Upstreams {
  readonly #byAddress = new Map<string, Upstream>();

  acquire(host: string, port: number): SandboxPool {
    const key = `${host}:${port}`;
    let up = this.#byAddress.get(key);
    if (up === undefined) {
      up = { pool: new SandboxPool(host, port), refs: 0 };
      this.#byAddress.set(key, up);
    }
    up.refs++;
    return up.pool;
  }

  release(host: string, port: number): void {
    const key = `${host}:${port}`;
    const up = this.#byAddress.get(key);
    if (up === undefined) return;
    if (--up.refs > 0) return;
    this.#byAddress.delete(key);
    // Lets requests in flight finish, then closes their connections.
    up.pool.close();
  }

  close(): void {
    const ups = [...this.#byAddress.values()];
    this.#byAddress.clear();
    for (const up of ups) up.pool.destroy();
  }
}

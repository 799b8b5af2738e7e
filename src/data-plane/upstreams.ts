/**
 * Connection pools to sandbox addresses, shared by every endpoint at the same
 * address (the simulated runtime serves many sandboxes from one port) and
 * closed when the last such endpoint is gone.
 */
import { Pool } from 'undici';

const KEEP_ALIVE_MS = 30_000;

interface Upstream {
  pool: Pool;
  refs: number;
}

export class Upstreams {
  readonly #byAddress = new Map<string, Upstream>();

  acquire(host: string, port: number): Pool {
    const key = `${host}:${port}`;
    let up = this.#byAddress.get(key);
    if (up === undefined) {
      const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      up = {
        pool: new Pool(origin, {
          connections: null,
          pipelining: 1,
          keepAliveTimeout: KEEP_ALIVE_MS,
          keepAliveMaxTimeout: KEEP_ALIVE_MS,
          headersTimeout: 0,
          bodyTimeout: 0,
          connectTimeout: 5_000,
        }),
        refs: 0,
      };
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
    // Lets requests in flight finish, then closes the sockets.
    up.pool.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const pools = [...this.#byAddress.values()].map((u) => u.pool);
    this.#byAddress.clear();
    await Promise.allSettled(pools.map((p) => p.destroy()));
  }
}

/**
 * Connection pools to sandbox addresses, shared by every endpoint at the same
 * address (the simulated runtime serves many sandboxes from one port) and
 * closed when the last such endpoint is gone.
 *
 * A new address is connected to at once, before any request needs it: a new
 * endpoint is a sandbox that just became ready, and its first request is
 * often the cold one that waited for it (the TCP handshake and undici's
 * connection set-up were a visible part of an isolate cold start,
 * docs/benchmarks.md). The pool's first
 * connection is that socket, if it is still open and fresh.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { buildConnector, Pool } from 'undici';

const KEEP_ALIVE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 5_000;
/** An early connection no request took within this time is closed (servers drop idle ones). */
export const EARLY_CONNECTION_IDLE_MS = 20_000;

interface Upstream {
  pool: Pool;
  refs: number;
  early: Socket | undefined;
}

const connectDirectly = buildConnector({ timeout: CONNECT_TIMEOUT_MS });

export class Upstreams {
  readonly #byAddress = new Map<string, Upstream>();

  acquire(host: string, port: number): Pool {
    const key = `${host}:${port}`;
    let up = this.#byAddress.get(key);
    if (up === undefined) {
      const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      const created: Upstream = {
        pool: new Pool(origin, {
          connections: null,
          pipelining: 1,
          keepAliveTimeout: KEEP_ALIVE_MS,
          keepAliveMaxTimeout: KEEP_ALIVE_MS,
          headersTimeout: 0,
          bodyTimeout: 0,
          connect: (opts, callback) => {
            const early = created.early;
            created.early = undefined;
            if (early === undefined || early.destroyed) connectDirectly(opts, callback);
            else if (early.connecting) {
              // Wait for the handshake under way; if it fails, connect afresh.
              const onConnect = () => {
                early.off('close', onClose);
                callback(null, handOver(early));
              };
              const onClose = () => {
                early.off('connect', onConnect);
                connectDirectly(opts, callback);
              };
              early.once('connect', onConnect);
              early.once('close', onClose);
            } else {
              // undici expects the answer later than the call, as a handshake would be.
              process.nextTick(() => callback(null, handOver(early)));
            }
          },
        }),
        refs: 0,
        early: connectEarly(host, port),
      };
      up = created;
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
    up.early?.destroy();
    // Lets requests in flight finish, then closes the sockets.
    up.pool.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    const ups = [...this.#byAddress.values()];
    this.#byAddress.clear();
    for (const up of ups) up.early?.destroy();
    await Promise.allSettled(ups.map((u) => u.pool.destroy()));
  }
}

/** A socket to the address, closed if it fails or no request takes it in time. */
function connectEarly(host: string, port: number): Socket {
  const socket = netConnect({ host, port, noDelay: true, keepAlive: true });
  // Failures show on the first request, which connects again.
  socket.on('error', () => socket.destroy());
  socket.setTimeout(EARLY_CONNECTION_IDLE_MS, () => socket.destroy());
  return socket;
}

function handOver(socket: Socket): Socket {
  socket.setTimeout(0);
  socket.removeAllListeners('timeout');
  socket.removeAllListeners('error');
  return socket;
}

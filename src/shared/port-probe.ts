/**
 * Ports, and whether anything listens on one. A refused TCP connection
 * proves that nothing listens there now (the process is gone, on a host
 * that still answers); a time-out or an accepted connection proves nothing
 * of the kind, and answers false.
 */
import { connect, createServer, type AddressInfo } from 'node:net';

const PROBE_TIMEOUT_MS = 1000;

export function refusesConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ECONNREFUSED');
    });
  });
}

/** A port nothing listens on now (the kernel's choice), for a server that cannot bind port 0 itself. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Ports, and whether anything listens on one. A refused TCP connection
 * proves that nothing listens there now (the process is gone, on a host
 * that still answers); a time-out or an accepted connection proves nothing
 * of the kind, and answers false.
 */
import { connect, createServer, type AddressInfo } from 'node:net';

const PROBE_TIMEOUT_MS = 1000;
/** After a dropped connection, a port is looked at this many times, so far apart (see processGone). */
const GONE_PROBES = 5;
const GONE_PROBE_GAP_MS = 100;

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

/**
 * After a connection to a process dropped: whether the process is gone (its
 * port refuses connections). A process being killed can drop its
 * connections just before its listening socket, which then still accepts
 * for a moment, so the port is looked at a few times. `stillAsked` returning
 * false ends the looking (answer: false) once the answer no longer matters.
 */
export async function processGone(
  host: string,
  port: number,
  stillAsked: () => boolean = () => true,
): Promise<boolean> {
  for (let i = 0; i < GONE_PROBES && stillAsked(); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, GONE_PROBE_GAP_MS));
    if (stillAsked() && (await refusesConnections(host, port))) return true;
  }
  return false;
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

/**
 * Whether a listening socket can be bound to host:port now (it is closed
 * again at once). Only EADDRINUSE says no: an error that says nothing of the
 * port (an address this host cannot bind) leaves the answer to the server
 * that will listen there.
 */
export function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports, from `from` and below `below`,
 * that are all free now; undefined if there is no such block.
 */
export async function freePortBlock(
  host: string,
  count: number,
  from: number,
  below: number,
): Promise<number | undefined> {
  let first = from;
  for (let port = first; first + count <= below; port++) {
    if (port === first + count) return first;
    if (!(await canListen(host, port))) first = port + 1;
  }
  return undefined;
}

/**
 * One TCP port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the
 * first bytes of a connection decide (`PRI * HTTP/2.0` is the HTTP/2 client
 * preface). With `tls`, the same over TLS (ALPN offers h2 and http/1.1). Both protocols reach the same handler as an
 * Exchange (exchange.ts): HTTP/2 through Node's core stream API, HTTP/1.1
 * through its request and response.
 *
 * Slow or idle clients are closed: a connection must send its first byte,
 * and each request its headers, within `headersTimeoutMs`; a connection with
 * nothing in flight is closed after `idleTimeoutMs`; an HTTP/2 session opens
 * at most `maxConcurrentStreams` streams at once.
 */
import { createServer as createHttp1Server } from 'node:http';
import {
  createServer as createHttp2Server,
  type Http2Session,
  type ServerHttp2Session,
} from 'node:http2';
import { createServer as createTlsServer } from 'node:tls';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { Http1Exchange, Http2Exchange, type Exchange, type StreamCloseWatch } from './exchange.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
} from './data-plane-options.js';

export type RequestHandler = (exchange: Exchange) => void;

const H2_PREFACE_START = Buffer.from('PRI * HTTP/2.0');

const MAX_REJECTED_STREAMS_PER_SESSION = 1_000_000;
/** Longest an HTTP/1 request may take to arrive whole, body included (Node's own default). */
const REQUEST_TIMEOUT_MS = 300_000;
/** How often Node's HTTP/1 server looks for requests past their time-outs. */
const CONNECTIONS_CHECK_INTERVAL_MS = 1000;

export interface ListenerOptions {
  headersTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConcurrentStreams?: number;
  /** TLS on the port: HTTP/2 (ALPN `h2`, or prior knowledge) and HTTP/1.1 inside it. */
  tls?: { cert: Buffer; key: Buffer };
}

export interface DualProtocolServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting; open connections are closed once idle (HTTP/1) or after GOAWAY (HTTP/2). */
  close(): Promise<void>;
}

export function createDualProtocolServer(
  handler: RequestHandler,
  options: ListenerOptions = {},
): DualProtocolServer {
  const headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const h1 = createHttp1Server(
    {
      keepAliveTimeout: idleTimeoutMs,
      headersTimeout: headersTimeoutMs,
      requestTimeout: Math.max(REQUEST_TIMEOUT_MS, headersTimeoutMs),
      connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
      noDelay: true,
    },
    (req, res) => handler(new Http1Exchange(req, res)),
  );
  // No 'request' listener: Node then makes no compatibility objects per stream.
  const h2 = createHttp2Server({
    settings: {
      maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
      initialWindowSize: 1024 * 1024,
    },
    maxSessionMemory: 64,
    // Node closes a session (ENHANCE_YOUR_CALM) after this many refused
    // streams (its default: 100). Under a surge a client may open streams
    // the server still counts, and one refused stream would then end every
    // request of the session; a refused stream alone is retried by clients.
    maxSessionRejectedStreams: MAX_REJECTED_STREAMS_PER_SESSION,
  });
  const watches = new WeakMap<Http2Session, SessionWatch>();
  h2.on('session', (session) =>
    watches.set(session, new SessionWatch(session, headersTimeoutMs, idleTimeoutMs)),
  );
  h2.on('stream', (stream, headers) => {
    const watch = watches.get(stream.session!);
    watch?.streamOpened();
    handler(new Http2Exchange(stream, headers, watch));
  });
  const sockets = new Set<Socket>();
  const onSocket = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    // Nothing sent yet: neither server watches this socket until its first bytes decide which.
    socket.setTimeout(headersTimeoutMs, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      const n = Math.min(first.length, H2_PREFACE_START.length);
      const isH2 = first.subarray(0, n).equals(H2_PREFACE_START.subarray(0, n));
      if (isH2) {
        // The HTTP/2 session reads what is buffered in the socket itself.
        h2.emit('connection', socket);
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    });
  };
  // With TLS the same choice is made on the decrypted bytes (a client that
  // negotiated h2 by ALPN starts with the preface too).
  const tcp: Server =
    options.tls === undefined
      ? createTcpServer({ noDelay: true }, onSocket)
      : createTlsServer(
          {
            noDelay: true,
            cert: options.tls.cert,
            key: options.tls.key,
            ALPNProtocols: ['h2', 'http/1.1'],
            handshakeTimeout: headersTimeoutMs,
          },
          onSocket,
        );

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          // Node's HTTP/1 server checks headersTimeout and requestTimeout only
          // once it has heard 'listening'; it never listens itself here.
          h1.emit('listening');
          resolve(tcp.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        tcp.close(() => resolve());
        h1.close();
        h1.closeIdleConnections();
        h2.close();
        const t = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 2000);
        t.unref();
      });
    },
  };
}

/**
 * Closes an HTTP/2 session whose preface and first SETTINGS do not arrive
 * within `headersTimeoutMs`, and one with no stream open for
 * `idleTimeoutMs`. (A stream counts once its headers are complete, so a
 * session trickling a header block is idle too.) Streams only count and
 * stamp the time, told by their exchanges (no listener of its own per
 * stream): the one timer is checked and re-armed when it fires, not
 * cleared and set again per request (which rebuilt Node's timer lists each
 * time a busy session fell idle between two requests).
 */
class SessionWatch implements StreamCloseWatch {
  readonly #session: ServerHttp2Session;
  readonly #idleTimeoutMs: number;
  #open = 0;
  #heard = false;
  #idleSince = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(session: ServerHttp2Session, headersTimeoutMs: number, idleTimeoutMs: number) {
    this.#session = session;
    this.#idleTimeoutMs = idleTimeoutMs;
    session.on('error', () => undefined);
    this.#timer = setTimeout(() => session.destroy(), headersTimeoutMs);
    session.once('remoteSettings', () => this.#alive());
    session.once('close', () => clearTimeout(this.#timer));
  }

  streamOpened(): void {
    this.#alive();
    this.#open++;
  }

  streamClosed(): void {
    if (--this.#open === 0) this.#idleSince = performance.now();
  }

  /** The peer is alive: from now on the idle check runs instead of the headers time-out. */
  #alive(): void {
    if (this.#heard) return;
    this.#heard = true;
    this.#idleSince = performance.now();
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), this.#idleTimeoutMs);
  }

  #check(): void {
    const idleFor = this.#open === 0 ? performance.now() - this.#idleSince : 0;
    if (this.#open > 0 || idleFor < this.#idleTimeoutMs) {
      this.#timer = setTimeout(() => this.#check(), this.#idleTimeoutMs - idleFor);
      return;
    }
    this.#timer = undefined;
    const session = this.#session;
    session.close();
    // A peer that never acknowledges the GOAWAY is cut off.
    setTimeout(() => session.destroy(), 1000).unref();
  }
}

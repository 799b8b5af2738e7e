/**
 * One TCP port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the
 * first bytes of a connection decide (`PRI * HTTP/2.0` is the HTTP/2 client
 * preface). With `tls`, the same over TLS (ALPN offers h2 and http/1.1). Both protocols reach the same handler as an
 * Exchange (exchange.ts): HTTP/2 through the data plane's own server
 * (h2/session.ts), HTTP/1.1 through Node's request and response.
 *
 * Slow or idle clients are closed: a connection must send its first byte,
 * and each request its headers, within `headersTimeoutMs`; a connection with
 * nothing in flight is closed after `idleTimeoutMs`; an HTTP/2 session opens
 * at most `maxConcurrentStreams` streams at once. (An HTTP/2 session counts
 * a stream once its headers are complete, so a session trickling a header
 * block is idle too.)
 */
import { createServer as createHttp1Server } from 'node:http';
import { createServer as createTlsServer } from 'node:tls';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { Http1Exchange, type Exchange } from './exchange.js';
import { H2Session } from './h2/session.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_STREAMS,
} from './data-plane-options.js';

export type RequestHandler = (exchange: Exchange) => void;

const H2_PREFACE_START = Buffer.from('PRI * HTTP/2.0');

/** Each HTTP/2 stream's receive window: the request body a client may send before it is read. */
const STREAM_WINDOW_BYTES = 1024 * 1024;
/** An HTTP/2 session's receive window: the most request body the data plane holds for it. */
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
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
  const sessions = new Set<H2Session>();
  const h2Options = {
    maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
    streamWindowBytes: STREAM_WINDOW_BYTES,
    connectionWindowBytes: CONNECTION_WINDOW_BYTES,
    headersTimeoutMs,
    idleTimeoutMs,
    onStream: handler,
  };
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
        const session = new H2Session(socket, h2Options);
        sessions.add(session);
        session.onClosed(() => sessions.delete(session));
        socket.resume();
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
        for (const session of sessions) session.close();
        const t = setTimeout(() => {
          for (const s of sockets) s.destroy();
        }, 2000);
        t.unref();
      });
    },
  };
}

/**
 * One TCP port for HTTP/1.1 and cleartext HTTP/2 with prior knowledge: the
 * first bytes of a connection decide (`PRI * HTTP/2.0` is the HTTP/2 client
 * preface). Both protocols reach the same request handler through Node's
 * compatible request/response API.
 */
import {
  createServer as createHttp1Server,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import {
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import {
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';

export type AnyRequest = IncomingMessage | Http2ServerRequest;
export type AnyResponse = ServerResponse | Http2ServerResponse;
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void;

const H2_PREFACE_START = Buffer.from('PRI * HTTP/2.0');

export interface DualProtocolServer {
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops accepting; open connections are closed once idle (HTTP/1) or after GOAWAY (HTTP/2). */
  close(): Promise<void>;
}

export function createDualProtocolServer(handler: RequestHandler): DualProtocolServer {
  const h1 = createHttp1Server(
    { keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true },
    handler,
  );
  h1.headersTimeout = 66_000;
  const h2 = createHttp2Server(
    {
      settings: { maxConcurrentStreams: 100_000, initialWindowSize: 1024 * 1024 },
      maxSessionMemory: 64,
    },
    handler,
  );
  h2.on('session', (session) => session.on('error', () => undefined));
  const sockets = new Set<Socket>();
  const tcp: Server = createTcpServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
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
    socket.on('error', () => undefined);
  });

  return {
    listen(port, host) {
      return new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          resolve(tcp.address() as AddressInfo);
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        tcp.close(() => resolve());
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

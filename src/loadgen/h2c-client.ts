/**
 * Cleartext HTTP/2 with prior knowledge, as InVitro invokes: a few sessions
 * to one data plane, requests spread over them, each naming its function in
 * `:authority`. Never throws per request: failures come back as results.
 */
import { connect, constants, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';

export interface H2Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  error?: string;
}

export class H2cClient implements AsyncDisposable {
  readonly #sessions: ClientHttp2Session[] = [];
  readonly #origin: string;
  #next = 0;
  #closed = false;

  constructor(origin: string, sessions = 2) {
    this.#origin = origin;
    for (let i = 0; i < sessions; i++) this.#sessions.push(this.#open());
  }

  #open(): ClientHttp2Session {
    const s = connect(this.#origin, {
      settings: { initialWindowSize: 1 << 20 },
      peerMaxConcurrentStreams: 100_000,
    });
    s.on('error', () => undefined);
    return s;
  }

  request(
    authority: string,
    headers: OutgoingHttpHeaders = {},
    path = '/',
    timeoutMs = 120_000,
  ): Promise<H2Reply> {
    const i = this.#next++ % this.#sessions.length;
    let session = this.#sessions[i]!;
    if (session.closed || session.destroyed) {
      if (this.#closed)
        return Promise.resolve({ status: 0, body: '', headers: {}, error: 'client closed' });
      session = this.#sessions[i] = this.#open();
    }
    return new Promise((resolve) => {
      let status = 0;
      let body = '';
      let resHeaders: H2Reply['headers'] = {};
      let done = false;
      const finish = (error?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(
          error === undefined
            ? { status, body, headers: resHeaders }
            : { status, body, headers: resHeaders, error },
        );
      };
      let stream;
      try {
        stream = session.request(
          { ':method': 'GET', ':path': path, ':authority': authority, ...headers },
          { endStream: true },
        );
      } catch (err) {
        finish(err instanceof Error ? err.message : String(err));
        return;
      }
      const timer = setTimeout(() => {
        stream.close(constants.NGHTTP2_CANCEL);
        finish(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      stream.setEncoding('utf8');
      stream.once('response', (h) => {
        status = Number(h[':status']);
        resHeaders = h;
      });
      stream.on('data', (c: string) => (body += c));
      stream.once('end', () => finish());
      stream.once('error', (err: Error) => finish(err.message));
      stream.once('close', () =>
        finish(status === 0 ? 'stream closed without an answer' : undefined),
      );
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.all(
      this.#sessions.map(
        // A session that never connected is destroyed, and close() would never call back.
        (s) =>
          new Promise<void>((resolve) =>
            s.closed || s.destroyed ? resolve() : s.close(() => resolve()),
          ),
      ),
    ).then(() => undefined);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

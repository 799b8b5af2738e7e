/**
 * The data plane's own HTTP/2 server (src/data-plane/h2/), through the
 * listener on a real port: Node's http2 client for what a well-behaved
 * client does (bodies past the flow-control windows both ways, resets,
 * graceful close), raw frames for what a hostile one does.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, constants as h2c, type ClientHttp2Session } from 'node:http2';
import {
  connect as netConnect,
  createServer as createTcpServer,
  type AddressInfo,
  type Socket,
} from 'node:net';
import {
  createDualProtocolServer,
  type DualProtocolServer,
} from '../../../src/data-plane/listener.js';
import type { Exchange } from '../../../src/data-plane/exchange.js';
import { H2Session } from '../../../src/data-plane/h2/session.js';
import type { H2Stream } from '../../../src/data-plane/h2/stream.js';
import { H2_PREFACE, h2Frame, hpackLiteral } from '../../helpers/h2-frames.js';
import { until } from '../../helpers/until.js';

interface Seen {
  closed: number;
  bodyErrors: number;
}

/** Answers by path: /echo-length (reads the body, answers its size), /big?n=N, /stream?n=N, /hold (never answers), / ("ok"). */
function handler(seen: Seen, held: Exchange[]) {
  return (ex: Exchange) => {
    ex.onClose(() => seen.closed++);
    const url = new URL(ex.url, 'http://x');
    const n = Number(url.searchParams.get('n') ?? 0);
    if (url.pathname === '/echo-length') {
      let bytes = 0;
      ex.body.on('data', (d: Buffer) => (bytes += d.length));
      ex.body.on('error', () => seen.bodyErrors++);
      ex.body.on('end', () => ex.reply(200, { 'content-type': 'text/plain' }, String(bytes)));
      return;
    }
    if (url.pathname === '/big') return ex.reply(200, {}, Buffer.alloc(n, 0x61));
    if (url.pathname === '/stream') {
      const out = ex.replyHead(200, { 'x-streamed': '1' });
      const piece = Buffer.alloc(16 * 1024, 0x62);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const k = Math.min(left, piece.length);
          left -= k;
          if (!out.write(piece.subarray(0, k))) return out.once('drain', pump);
        }
        out.end();
      };
      return pump();
    }
    if (url.pathname === '/hold') {
      held.push(ex);
      if (ex.hasBody) ex.body.on('error', () => seen.bodyErrors++).resume();
      return;
    }
    ex.reply(200, { 'content-type': 'text/plain' }, 'ok');
  };
}

async function h2request(
  session: ClientHttp2Session,
  path: string,
  body?: Buffer,
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': body ? 'POST' : 'GET' });
    const chunks: Buffer[] = [];
    let status = 0;
    let headers: Record<string, unknown> = {};
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks), headers }));
    stream.on('error', reject);
    stream.end(body);
  });
}

const frame = h2Frame;
const literal = hpackLiteral;
/** GET `path` (:method GET, :scheme http, :authority fn), plus `extra` header block bytes. */
const getBlock = (path: string, extra: Buffer = Buffer.alloc(0)) =>
  Buffer.concat([
    Buffer.from([0x82, 0x86, 0x01, 2]),
    Buffer.from('fn'),
    Buffer.from([0x04, path.length]),
    Buffer.from(path),
    extra,
  ]);
const HEADERS_END = 0x5; // END_STREAM | END_HEADERS

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A raw HTTP/2 connection: sends bytes, collects the server's frames. */
class RawClient {
  readonly frames: Frame[] = [];
  closed = false;
  readonly #socket: Socket;
  #buf = Buffer.alloc(0);

  constructor(port: number) {
    this.#socket = netConnect(port, '127.0.0.1');
    this.#socket.on('error', () => undefined);
    this.#socket.on('close', () => (this.closed = true));
    this.#socket.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      while (this.#buf.length >= 9) {
        const length = this.#buf.readUIntBE(0, 3);
        if (this.#buf.length < 9 + length) break;
        this.frames.push({
          type: this.#buf[3]!,
          flags: this.#buf[4]!,
          id: this.#buf.readUInt32BE(5) & 0x7fffffff,
          payload: this.#buf.subarray(9, 9 + length),
        });
        this.#buf = this.#buf.subarray(9 + length);
      }
    });
    this.send(H2_PREFACE, frame(4, 0, 0));
  }

  send(...bytes: Buffer[]): void {
    this.#socket.write(Buffer.concat(bytes));
  }

  /** Waits (at most 3 s) for a frame that `match` accepts. */
  async waitFor(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    await until(what, () => this.frames.some(match), 3000);
    return this.frames.find(match)!;
  }

  async goaway(): Promise<number> {
    const f = await this.waitFor((f) => f.type === 7, 'GOAWAY');
    return f.payload.readUInt32BE(4);
  }

  /** The payload of the first DATA frame on stream `id`, as text. */
  async data(id: number): Promise<string> {
    const f = await this.waitFor((f) => f.type === 0 && f.id === id, `DATA on ${id}`);
    return f.payload.toString();
  }

  async reset(id: number): Promise<number> {
    const f = await this.waitFor((f) => f.type === 3 && f.id === id, `RST_STREAM on ${id}`);
    return f.payload.readUInt32BE(0);
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

describe('data plane HTTP/2 server', () => {
  const seen: Seen = { closed: 0, bodyErrors: 0 };
  const held: Exchange[] = [];
  let server: DualProtocolServer;
  let port = 0;
  let url = '';

  before(async () => {
    server = createDualProtocolServer(handler(seen, held), { maxConcurrentStreams: 8 });
    port = (await server.listen(0, '127.0.0.1')).port;
    url = `http://127.0.0.1:${port}`;
  });
  after(() => server.close());

  it(
    'takes request bodies past both receive windows, giving the windows back as the body is read',
    { timeout: 15_000 },
    async () => {
      const session = h2connect(url);
      try {
        // 40 MiB: past the 1 MiB stream window and the 16 MiB connection window.
        const body = Buffer.alloc(40 * 1024 * 1024, 0x63);
        const res = await h2request(session, '/echo-length', body);
        assert.equal(res.status, 200);
        assert.equal(res.body.toString(), String(body.length));
      } finally {
        session.destroy();
      }
    },
  );

  it(
    'sends answers past the client’s windows and frame size, whole or streamed',
    { timeout: 15_000 },
    async () => {
      // The client's stream and connection windows stay at 65 535 octets.
      const session = h2connect(url, { settings: { initialWindowSize: 65_535 } });
      try {
        const whole = await h2request(session, '/big?n=300000');
        assert.equal(whole.status, 200);
        assert.equal(whole.body.length, 300_000);
        const streamed = await h2request(session, '/stream?n=1000000');
        assert.equal(streamed.headers['x-streamed'], '1');
        assert.equal(streamed.body.length, 1_000_000);
        assert.ok(streamed.body.every((b) => b === 0x62));
      } finally {
        session.destroy();
      }
    },
  );

  it(
    'tells the handler when a client resets its stream: closed, and the body fails',
    { timeout: 15_000 },
    async () => {
      const c = new RawClient(port);
      try {
        const closedBefore = seen.closed;
        const errorsBefore = seen.bodyErrors;
        // HEADERS without END_STREAM, part of a body, then RST_STREAM (CANCEL).
        c.send(frame(1, 0x4, 1, getBlock('/hold')), frame(0, 0, 1, Buffer.from('part of a body')));
        await until('the request', () => held.length > 0, 3000);
        const ex = held.shift()!;
        assert.equal(ex.gone, false);
        c.send(frame(3, 0, 1, Buffer.from([0, 0, 0, 8])));
        await until('the close', () => ex.gone, 3000);
        assert.equal(ex.gone, true);
        assert.equal(ex.finished, false);
        assert.equal(seen.closed, closedBefore + 1);
        await until('the body error', () => seen.bodyErrors > errorsBefore, 3000);
        assert.equal(seen.bodyErrors, errorsBefore + 1);
        // The session goes on.
        c.send(frame(1, HEADERS_END, 3, getBlock('/')));
        assert.equal(await c.data(3), 'ok');
      } finally {
        c.destroy();
      }
    },
  );

  it(
    'finishes the streams in flight when the server closes, with GOAWAY',
    { timeout: 15_000 },
    async () => {
      const own = createDualProtocolServer(handler({ closed: 0, bodyErrors: 0 }, held));
      const ownPort = (await own.listen(0, '127.0.0.1')).port;
      const session = h2connect(`http://127.0.0.1:${ownPort}`);
      session.on('error', () => undefined);
      try {
        const goaway = new Promise<number>((r) =>
          session.once('goaway', (code: number) => r(code)),
        );
        const answer = h2request(session, '/hold');
        await until('the request', () => held.length > 0, 3000);
        const closing = own.close();
        assert.equal(await goaway, h2c.NGHTTP2_NO_ERROR);
        held.shift()!.reply(200, {}, 'late but whole');
        assert.equal((await answer).body.toString(), 'late but whole');
        await closing;
      } finally {
        session.destroy();
      }
    },
  );

  it(
    'resets a stream whose headers break the rules, and serves the next one',
    { timeout: 15_000 },
    async () => {
      const c = new RawClient(port);
      try {
        c.send(
          frame(1, HEADERS_END, 1, getBlock('/', literal('Upper-Case', 'v'))),
          frame(1, HEADERS_END, 3, getBlock('/', literal('connection', 'keep-alive'))),
          frame(1, HEADERS_END, 5, getBlock('/', literal('x', 'a\r\nb: c'))),
          frame(1, HEADERS_END, 7, getBlock('/', literal('content-length', '1x'))),
          frame(
            1,
            HEADERS_END,
            9,
            getBlock(
              '/',
              Buffer.concat([literal('content-length', '0'), literal('content-length', '0')]),
            ),
          ),
          frame(1, HEADERS_END, 11, getBlock('/')),
        );
        for (const id of [1, 3, 5, 7, 9])
          assert.equal(await c.reset(id), h2c.NGHTTP2_PROTOCOL_ERROR);
        assert.equal(await c.data(11), 'ok');
      } finally {
        c.destroy();
      }
    },
  );

  it(
    'drops frames still coming for a stream it answered before the request ended',
    { timeout: 15_000 },
    async () => {
      const c = new RawClient(port);
      try {
        // A request whose body has not ended is answered ("ok") and reset (NO_ERROR).
        c.send(frame(1, 0x4, 1, getBlock('/')));
        assert.equal(await c.reset(1), h2c.NGHTTP2_NO_ERROR);
        // The client had more on its way: body, then trailers. Neither ends the session.
        c.send(
          frame(0, 0, 1, Buffer.from('late')),
          frame(1, HEADERS_END, 1, literal('x-trailer', 'v')),
        );
        c.send(frame(1, HEADERS_END, 3, getBlock('/')));
        assert.equal(await c.data(3), 'ok');
        assert.equal(c.frames.filter((f) => f.type === 7).length, 0, 'no GOAWAY');
        assert.equal(
          c.frames.filter((f) => f.type === 3 && f.id === 1).length,
          1,
          'one RST_STREAM',
        );
      } finally {
        c.destroy();
      }
    },
  );

  it('refuses streams past the concurrent-stream limit', { timeout: 15_000 }, async () => {
    const c = new RawClient(port);
    try {
      const frames: Buffer[] = [];
      for (let i = 0; i < 9; i++) frames.push(frame(1, HEADERS_END, 1 + 2 * i, getBlock('/hold')));
      c.send(...frames);
      assert.equal(await c.reset(17), h2c.NGHTTP2_REFUSED_STREAM);
      // The eight held streams are the client's to end.
      c.send(
        ...[1, 3, 5, 7, 9, 11, 13, 15].map((id) => frame(3, 0, id, Buffer.from([0, 0, 0, 8]))),
      );
    } finally {
      c.destroy();
      held.length = 0;
    }
  });

  it(
    'answers PING, and ends the session with the right code for a broken frame',
    { timeout: 15_000 },
    async () => {
      const c = new RawClient(port);
      try {
        c.send(frame(6, 0, 0, Buffer.from('pingpong')));
        const pong = await c.waitFor((f) => f.type === 6 && f.flags === 1, 'PING ACK');
        assert.equal(pong.payload.toString(), 'pingpong');
        c.send(frame(0, 0, 0, Buffer.from('data on stream 0')));
        assert.equal(await c.goaway(), h2c.NGHTTP2_PROTOCOL_ERROR);
      } finally {
        c.destroy();
      }
      const big = new RawClient(port);
      try {
        big.send(frame(8, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])));
        assert.equal(await big.goaway(), h2c.NGHTTP2_FLOW_CONTROL_ERROR);
      } finally {
        big.destroy();
      }
    },
  );

  it(
    'ends a session whose client resets open streams past its budget (rapid reset)',
    { timeout: 15_000 },
    async () => {
      // A session of its own, with a small budget: 100 resets at once, 100 a second after.
      const opened: H2Stream[] = [];
      const tcp = createTcpServer((socket) => {
        new H2Session(socket, {
          maxConcurrentStreams: 100,
          streamWindowBytes: 65_535,
          connectionWindowBytes: 65_535,
          headersTimeoutMs: 5000,
          idleTimeoutMs: 5000,
          onStream: (stream) => opened.push(stream),
          resetBurst: 100,
          resetsPerSecond: 100,
        });
      });
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
      const c = new RawClient((tcp.address() as AddressInfo).port);
      try {
        const rst = Buffer.from([0, 0, 0, 8]);
        // 90 streams opened and reset: within the budget, the session goes on.
        const frames = (from: number, n: number) =>
          Array.from({ length: n }, (_, i) => [
            frame(1, HEADERS_END, 1 + 2 * (from + i), getBlock('/hold')),
            frame(3, 0, 1 + 2 * (from + i), rst),
          ]).flat();
        c.send(...frames(0, 90));
        await until('90 streams', () => opened.length === 90, 3000);
        assert.equal(c.frames.filter((f) => f.type === 7).length, 0, 'no GOAWAY yet');
        // 1000 more at once: past it, unless a second per 100 passed meanwhile.
        c.send(...frames(90, 1000));
        assert.equal(await c.goaway(), h2c.NGHTTP2_ENHANCE_YOUR_CALM);
        assert.ok(opened.length < 1090, `${opened.length} streams opened`);
      } finally {
        c.destroy();
        tcp.close();
      }
    },
  );

  it('ends a session whose header block grows past its limit', { timeout: 15_000 }, async () => {
    const c = new RawClient(port);
    try {
      c.send(frame(1, 0, 1, getBlock('/')));
      const piece = Buffer.alloc(16_000, 0x40);
      for (let i = 0; i < 20 && !c.closed; i++) c.send(frame(9, 0, 1, piece));
      assert.equal(await c.goaway(), h2c.NGHTTP2_ENHANCE_YOUR_CALM);
    } finally {
      c.destroy();
    }
  });
});

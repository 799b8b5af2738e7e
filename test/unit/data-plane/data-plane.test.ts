/**
 * The data plane in-process, on real loopback sockets, with a stand-in
 * control plane (FakeControlPlane) and sandboxes that are plain HTTP servers
 * of this process: what clients that give up, misbehave or go slow do to it,
 * the execution time-out, the first function table, and how a sandbox's end
 * reaches the client.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect as h2connect, constants as h2constants } from 'node:http2';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { request } from 'undici';
import { silentLogger } from '../../../src/shared/logger.js';
import { DataPlane } from '../../../src/data-plane/data-plane.js';
import { LeastLoadedBalancer } from '../../../src/data-plane/load-balancer/least-loaded.js';
import type { DataPlaneUpdate } from '../../../src/rpc/contracts/data-plane.js';
import type { Endpoint, FunctionRoute } from '../../../src/rpc/contracts/common.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';
import { until as waitUntil } from '../../helpers/until.js';
import { H2_PREFACE, h2Frame, hpackLiteral } from '../../helpers/h2-frames.js';

/** A sandbox: answers by path, counts the requests it is serving. */
class FakeSandbox {
  readonly server: Server;
  active = 0;
  /** The headers of every request it was sent. */
  readonly heard: Array<Record<string, unknown>> = [];
  /** Requests whose client connection closed before the answer. */
  cutOff = 0;
  onDie: (() => void) | undefined;
  readonly #sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((req, res) => {
      this.heard.push(req.headers);
      this.active++;
      let answered = false;
      res.once('close', () => {
        this.active--;
        if (!answered) this.cutOff++;
      });
      const url = new URL(req.url ?? '/', 'http://sandbox');
      const answer = (body: string) => {
        answered = true;
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
      };
      switch (url.pathname) {
        case '/slow': {
          const t = setTimeout(() => answer('slow done'), Number(url.searchParams.get('ms')));
          res.once('close', () => clearTimeout(t));
          return;
        }
        case '/hang':
          return;
        case '/stream': {
          answered = true;
          res.writeHead(200, { 'content-type': 'text/plain' });
          const t = setInterval(() => res.write('x'.repeat(1024)), 20);
          res.once('close', () => clearInterval(t));
          return;
        }
        case '/die':
          this.onDie?.();
          req.socket.destroy();
          return;
        case '/hop':
          answered = true;
          res
            .writeHead(200, { connection: 'x-resp-hop', 'x-resp-hop': '1', 'x-kept': '1' })
            .end('hop');
          return;
        case '/garbled':
          // Not HTTP: what a broken or hostile function might send.
          answered = true;
          req.socket.end('SPDY/3 200 OK\r\n\r\nnot http');
          return;
        case '/echo': {
          let n = 0;
          req.on('data', (c: Buffer) => (n += c.length));
          req.on('end', () => answer(String(n)));
          return;
        }
        default:
          answer('ok');
      }
    });
    this.server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function route(name: string, extra: Partial<FunctionRoute> = {}): FunctionRoute {
  return { name, concurrency: 1, coldStartTimeoutMs: 60_000, timeoutMs: 60_000, ...extra };
}

function endpoint(id: string, fn: string, port: number): Endpoint {
  return { id, function: fn, workerId: 'w', host: '127.0.0.1', port };
}

const until = (what: string, check: () => boolean, timeoutMs = 5000) =>
  waitUntil(what, check, timeoutMs);

interface Cluster {
  cp: FakeControlPlane;
  dp: DataPlane;
  sandbox: FakeSandbox;
  sandboxPort: number;
  url: string;
  close(): Promise<void>;
}

async function startCluster(
  opts: {
    functions?: FunctionRoute[];
    endpoints?: (sandboxPort: number) => Endpoint[];
    pushOnRegister?: boolean;
    tableWaitMs?: number;
    headersTimeoutMs?: number;
    idleTimeoutMs?: number;
    asyncMode?: boolean;
  } = {},
): Promise<Cluster> {
  const sandbox = new FakeSandbox();
  const sandboxPort = await sandbox.listen();
  const table: DataPlaneUpdate = {
    reset: true,
    upsertFunctions: opts.functions ?? [],
    addEndpoints: opts.endpoints?.(sandboxPort) ?? [],
  };
  const cp = await FakeControlPlane.start(opts.pushOnRegister === false ? undefined : () => table);
  const dp = await DataPlane.start({
    host: '127.0.0.1',
    proxyPort: 0,
    rpcPort: 0,
    controlPlanes: [{ host: '127.0.0.1', port: cp.port }],
    loadBalancer: () => new LeastLoadedBalancer(),
    logger: silentLogger(),
    ...(opts.tableWaitMs === undefined ? {} : { tableWaitMs: opts.tableWaitMs }),
    ...(opts.headersTimeoutMs === undefined ? {} : { headersTimeoutMs: opts.headersTimeoutMs }),
    ...(opts.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: opts.idleTimeoutMs }),
    ...(opts.asyncMode === undefined ? {} : { asyncMode: opts.asyncMode }),
  });
  await cp.registered();
  if (opts.pushOnRegister !== false) await dp.synced;
  return {
    cp,
    dp,
    sandbox,
    sandboxPort,
    url: `http://127.0.0.1:${dp.record.proxyPort}`,
    async close() {
      await dp.close();
      await cp.close();
      await sandbox.close();
    },
  };
}

async function get(url: string, host: string, path = '/') {
  const res = await request(`${url}${path}`, { headers: { host } });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** An HTTP/1 request given up after `afterMs`. */
function abandonH1(url: string, host: string, path: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest(`${url}${path}`, { headers: { host } });
    req.on('error', () => resolve());
    req.on('response', (res) => res.on('data', () => undefined));
    req.end();
    setTimeout(() => {
      req.destroy();
      resolve();
    }, afterMs);
  });
}

/** An HTTP/2 request reset after `afterMs` (the session stays). */
function abandonH2(url: string, host: string, path: string, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const session = h2connect(url);
    session.on('error', () => undefined);
    const stream = session.request({ ':path': path, ':authority': host }, { endStream: true });
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    setTimeout(() => {
      stream.close(h2constants.NGHTTP2_CANCEL);
      setTimeout(() => session.destroy(), 50);
      resolve();
    }, afterMs);
  });
}

/**
 * Opens a raw connection to `port`, runs `talk` on it, resolves with how
 * long it stayed open (ms; it is closed at `capMs`).
 */
function rawConnection(port: number, talk: (s: Socket) => void, capMs: number): Promise<number> {
  return new Promise<number>((resolve) => {
    const t0 = Date.now();
    const s = netConnect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.on('data', () => undefined);
    s.on('close', () => resolve(Date.now() - t0));
    s.on('connect', () => talk(s));
    setTimeout(() => {
      s.destroy();
      resolve(capMs);
    }, capMs).unref();
  });
}

async function metrics(url: string) {
  const res = await request(`${url}/metrics`);
  return (await res.body.json()) as { Inflight: number; QueueDepth: number };
}

describe('data plane: clients that give up', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({
      functions: [route('fn'), route('empty-fn', { coldStartTimeoutMs: 60_000 })],
      endpoints: (port) => [endpoint('sb-1', 'fn', port)],
    });
  });
  after(() => c.close());

  const phases: Array<[string, (url: string) => Promise<void>]> = [
    ['HTTP/1.1, before the answer', (url) => abandonH1(url, 'fn', '/slow?ms=5000', 100)],
    ['HTTP/2, before the answer', (url) => abandonH2(url, 'fn', '/slow?ms=5000', 100)],
    ['HTTP/1.1, while the answer streams', (url) => abandonH1(url, 'fn', '/stream', 150)],
    ['HTTP/2, while the answer streams', (url) => abandonH2(url, 'fn', '/stream', 150)],
  ];
  for (const [phase, abandon] of phases) {
    const beforeAnswer = phase.endsWith('before the answer');
    it(`survives a client that leaves (${phase}) and frees the sandbox's slot at once`, async () => {
      const cutOffBefore = c.sandbox.cutOff;
      await abandon(c.url);
      // The sandbox's only slot (concurrency 1) is free again: its request was cut off too.
      await until('the sandbox to see its request cut off', () => c.sandbox.active === 0, 1500);
      if (beforeAnswer)
        assert.equal(c.sandbox.cutOff, cutOffBefore + 1, 'cut off before its answer');
      const next = await get(c.url, 'fn');
      assert.equal(next.status, 200);
      assert.equal(next.headers['x-baton-start'], 'warm', 'no wait behind the abandoned request');
      const m = await metrics(c.url);
      assert.equal(m.Inflight, 0);
      assert.equal(m.QueueDepth, 0);
    });
  }

  it('survives a client that leaves after the sandbox answered, and many at once', async () => {
    // Which of them are cut off at the sandbox, dropped from the queue or
    // answered first depends on the order they arrive in (the sandbox takes
    // one at a time): the phases above cut one off for certain.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        i % 2 === 0
          ? abandonH1(c.url, 'fn', '/slow?ms=30', 10 + i * 5)
          : abandonH2(c.url, 'fn', '/slow?ms=30', 10 + i * 5),
      ),
    );
    await until('every abandoned request to end', () => c.sandbox.active === 0, 5000);
    assert.equal((await get(c.url, 'fn')).status, 200);
    // A reset still on its way may leave a request counted for a moment; none stays.
    const end = Date.now() + 2000;
    let m = await metrics(c.url);
    while ((m.Inflight > 0 || m.QueueDepth > 0) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 20));
      m = await metrics(c.url);
    }
    assert.deepEqual([m.Inflight, m.QueueDepth], [0, 0], 'in flight and queued');
  });

  it('drops a request whose client leaves while it waits in the queue', async () => {
    const gone = abandonH1(c.url, 'empty-fn', '/', 200);
    await until('the request to queue', () => c.cp.metrics.some((m) => m.queued > 0), 2000);
    await gone;
    await until('the queue to empty', () => c.cp.metrics.at(-1)?.queued === 0, 2000);
    assert.equal((await metrics(c.url)).QueueDepth, 0);
  });

  it('survives malformed input on both protocols', async () => {
    const garbage = (bytes: string) =>
      rawConnection(c.dp.record.proxyPort, (s) => s.end(bytes), 1000);
    await garbage('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x99\xff\xff\xff\xff\xffjunk');
    await garbage('GET / HTTP/1.1\r\nHost: fn\r\nContent-Length: -5\r\n\r\n');
    await garbage('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all');
    assert.equal((await get(c.url, 'fn')).status, 200);
  });

  it('forwards no header that a Connection header names, either way', async () => {
    const before = c.sandbox.heard.length;
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = httpRequest(`${c.url}/hop`, {
        headers: {
          host: 'fn',
          connection: 'keep-alive, X-Hop',
          'x-hop': 'secret',
          'x-kept': 'yes',
        },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.headers));
      });
      req.end();
    });
    const heard = c.sandbox.heard[before]!;
    assert.equal(heard['x-hop'], undefined);
    assert.equal(heard['x-kept'], 'yes');
    assert.equal(answer['x-resp-hop'], undefined);
    assert.equal(answer['x-kept'], '1');
  });

  it('lets no HTTP/2 request smuggle a line break into the request the sandbox gets', async () => {
    // HPACK by hand: clients refuse to send these.
    const literal = hpackLiteral;
    const frame = h2Frame;
    const attempts: Array<[string | number, string]> = [
      [4, '/ HTTP/1.1\r\nx-injected: path\r\n\r\nGET /'], // :path
      [4, '/a b'],
      ['x-test', 'a\r\nx-injected: value'],
      ['x-test', 'a\nx-injected: lf'],
      // The control: the same bytes with nothing wrong in them are served.
      ['x-test', 'plain'],
    ];
    const before = c.sandbox.heard.length;
    for (const [name, value] of attempts) {
      const block = Buffer.concat([
        Buffer.from([0x82, 0x86]), // :method GET, :scheme http
        literal(1, 'fn'), // :authority
        name === 4 ? literal(4, value) : Buffer.concat([literal(4, '/'), literal(name, value)]),
      ]);
      const bytes = Buffer.concat([
        H2_PREFACE,
        frame(4, 0, 0, Buffer.alloc(0)), // SETTINGS
        frame(1, 0x5, 1, block), // HEADERS, END_STREAM | END_HEADERS
      ]);
      await rawConnection(c.dp.record.proxyPort, (s) => s.write(bytes), 300);
    }
    const heard = c.sandbox.heard.slice(before);
    for (const h of heard) assert.equal(h['x-injected'], undefined, JSON.stringify(h));
    assert.ok(
      heard.some((h) => h['x-test'] === 'plain'),
      'the well-formed request reached the sandbox',
    );
    assert.equal((await get(c.url, 'fn')).status, 200);
  });
});

describe('data plane: requests to a sandbox', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({
      functions: [
        route('fn'),
        route('short', { timeoutMs: 200, coldStartTimeoutMs: 300 }),
        route('twice'),
      ],
      endpoints: (port) => [
        endpoint('sb-1', 'fn', port),
        endpoint('sb-2', 'short', port),
        // Nothing listens on port 1: the first choice refuses the connection.
        endpoint('sb-dead', 'twice', 1),
        endpoint('sb-live', 'twice', port),
      ],
    });
  });

  it('sends a request a dead sandbox refused to another sandbox instead of failing it', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await get(c.url, 'twice');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.text, 'ok');
    }
  });
  after(() => c.close());

  it('passes a body sent with Expect: 100-continue', async () => {
    const size = 2 * 1024 * 1024;
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const req = httpRequest(`${c.url}/echo`, {
          method: 'POST',
          headers: { host: 'fn', expect: '100-continue', 'content-length': String(size) },
        });
        req.on('continue', () => req.end(Buffer.alloc(size, 1)));
        req.on('response', (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: body }));
        });
        req.on('error', reject);
      },
    );
    assert.equal(status, 200, text);
    assert.equal(text, String(size));
  });

  it('answers 504 past the execution time-out and has the sandbox replaced', async () => {
    const res = await get(c.url, 'short', '/hang');
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-baton-error'], 'BATON_ERR_TIMEOUT');
    assert.match(res.text, /did not answer within its time-out of 200 ms/);
    await until('the eviction to reach the control plane', () => c.cp.evictions.length > 0);
    assert.deepEqual(c.cp.evictions[0], {
      id: 'sb-2',
      code: 'BATON_ERR_TIMEOUT',
      reason: 'an invocation passed the execution time-out of 200 ms',
    });
    // Nothing more is sent to it: the next request waits for a replacement.
    const next = await get(c.url, 'short', '/');
    assert.equal(next.headers['x-baton-error'], 'BATON_ERR_COLD_START_TIMEOUT');
  });

  it('tells the client how a sandbox that died while serving it ended', async () => {
    const reason = 'killed by the OOM killer: over its memory limit of 128 MiB';
    c.sandbox.onDie = () =>
      void c.cp.push({ removeEndpoints: ['sb-1'], endReasons: [{ id: 'sb-1', reason }] });
    const res = await get(c.url, 'fn', '/die');
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-baton-error'], 'BATON_ERR_SANDBOX_EXITED');
    assert.equal(res.text, `sandbox sb-1 of "fn" ended while serving the request: ${reason}\n`);
  });
});

describe('data plane: a sandbox whose answer is not HTTP', () => {
  it('answers 502 saying what was wrong, and keeps serving', async () => {
    const c = await startCluster({
      functions: [route('fn', { concurrency: 4 })],
      endpoints: (port) => [endpoint('sb-1', 'fn', port)],
    });
    try {
      const res = await get(c.url, 'fn', '/garbled');
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-baton-error'], 'BATON_ERR_SANDBOX_UNREACHABLE');
      assert.match(res.text, /sandbox sb-1 did not answer: malformed status line/);
      assert.equal((await get(c.url, 'fn', '/')).text, 'ok');
    } finally {
      await c.close();
    }
  });
});

describe('data plane: before the first function table', () => {
  it('holds requests until the table arrives, then routes them', async () => {
    const c = await startCluster({ pushOnRegister: false, tableWaitMs: 10_000 });
    try {
      const health = await get(c.url, c.url.slice(7), '/health');
      assert.equal(health.status, 503, 'not ready to serve without a table');
      const pending = get(c.url, 'fn');
      await new Promise((r) => setTimeout(r, 200));
      await c.cp.push({
        reset: true,
        upsertFunctions: [route('fn')],
        addEndpoints: [endpoint('sb-1', 'fn', c.sandboxPort)],
      });
      const res = await pending;
      assert.equal(res.status, 200, res.text);
      assert.equal((await get(c.url, 'nope')).status, 404, 'unknown once the table is known');
      assert.equal((await get(c.url, c.url.slice(7), '/health')).status, 200);
    } finally {
      await c.close();
    }
  });

  it('answers a retryable 503, never 404, when no table comes in time', async () => {
    const c = await startCluster({ pushOnRegister: false, tableWaitMs: 300 });
    try {
      const res = await get(c.url, 'fn');
      assert.equal(res.status, 503);
      assert.equal(res.headers['x-baton-error'], 'BATON_ERR_UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '1');
      assert.match(res.text, /no function table from the control plane/);
    } finally {
      await c.close();
    }
  });
});

describe('data plane: learning functions from the control plane', () => {
  it('asks for a function on its first request, once, and remembers a name that does not exist', async () => {
    const c = await startCluster({ tableWaitMs: 2000 });
    try {
      c.cp.holds.set('late', {
        upsertFunctions: [route('late')],
        addEndpoints: [endpoint('sb-9', 'late', c.sandboxPort)],
      });
      const first = await Promise.all([1, 2, 3].map(() => get(c.url, 'late')));
      assert.deepEqual(
        first.map((r) => r.status),
        [200, 200, 200],
      );
      assert.equal((await get(c.url, c.url.slice(7), '/function/late/x')).status, 200);
      assert.deepEqual(c.cp.lookups, ['late'], 'one lookup for concurrent and later requests');
      const metrics = await get(c.url, c.url.slice(7), '/metrics?service=nope');
      assert.equal(metrics.status, 400, metrics.text);
      assert.equal((await get(c.url, 'nope')).status, 404);
      assert.equal((await get(c.url, c.url.slice(7), '/function/nope/')).status, 404);
      assert.deepEqual(c.cp.lookups, ['late', 'nope'], 'an absent name is remembered');
      // A full view forgets absent names: the next request asks again.
      await c.cp.push({ reset: true, upsertFunctions: [route('late')] });
      assert.equal((await get(c.url, 'nope')).status, 404);
      assert.deepEqual(c.cp.lookups, ['late', 'nope', 'nope']);
    } finally {
      await c.close();
    }
  });

  it('answers a retryable 503, not 404, when the control plane cannot be asked', async () => {
    const c = await startCluster();
    try {
      c.cp.failLookups = true;
      const res = await get(c.url, 'fn');
      assert.equal(res.status, 503, res.text);
      assert.equal(res.headers['x-baton-error'], 'BATON_ERR_UNAVAILABLE');
      assert.equal(res.headers['retry-after'], '1');
      assert.match(res.text, /cannot ask the control plane for function "fn"/);
      // A failure is not remembered as absence.
      c.cp.failLookups = false;
      c.cp.holds.set('fn', {
        upsertFunctions: [route('fn')],
        addEndpoints: [endpoint('sb-1', 'fn', c.sandboxPort)],
      });
      assert.equal((await get(c.url, 'fn')).status, 200);
    } finally {
      await c.close();
    }
  });
});

describe('data plane: slow and idle clients', () => {
  let c: Cluster;
  before(async () => {
    c = await startCluster({
      functions: [route('fn')],
      endpoints: (port) => [endpoint('sb-1', 'fn', port)],
      headersTimeoutMs: 300,
      idleTimeoutMs: 600,
    });
  });
  after(() => c.close());

  const openFor = (talk: (s: Socket) => void, capMs = 5000) =>
    rawConnection(c.dp.record.proxyPort, talk, capMs);

  it('closes a connection that sends nothing, or only half an HTTP/2 preface', async () => {
    assert.ok((await openFor(() => undefined)) < 5000, 'silent connection closed');
    assert.ok((await openFor((s) => s.write('PRI * HTTP/2.0\r\n'))) < 5000, 'half preface closed');
  });

  it('closes a connection that trickles its headers', async () => {
    const open = await openFor((s) => {
      s.write('GET / HTTP/1.1\r\nHost: fn\r\n');
      const t = setInterval(() => s.write('X-Slow: 1\r\n'), 100);
      s.once('close', () => clearInterval(t));
    });
    assert.ok(open < 5000, 'trickling connection closed');
  });

  it('closes idle keep-alive connections and idle HTTP/2 sessions, but not busy ones', async () => {
    const h1 = await openFor((s) => s.write('GET / HTTP/1.1\r\nHost: fn\r\n\r\n'));
    assert.ok(h1 < 5000, 'idle HTTP/1.1 connection closed');
    const session = h2connect(c.url);
    session.on('error', () => undefined);
    const closed = new Promise<void>((r) => session.once('close', () => r()));
    // A request longer than the idle time-out keeps its session open to the end.
    const answer = await new Promise<string>((resolve, reject) => {
      const stream = session.request({ ':path': '/slow?ms=1000', ':authority': 'fn' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (body += d));
      stream.on('end', () => resolve(body));
      stream.on('error', reject);
      stream.end();
    });
    assert.equal(answer, 'slow done');
    const answeredAt = Date.now();
    await Promise.race([
      closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('session still open')), 5000)),
    ]);
    // Idle counts from the last stream's end (600 ms), not from the session's last timer.
    const idleFor = Date.now() - answeredAt;
    assert.ok(idleFor >= 450, `session closed ${idleFor} ms after its last stream`);
  });
});

describe('data plane: asynchronous invocations', () => {
  it("in Dirigent's async mode takes every request as one, answering 200 with its id; an attempt's own request runs", async () => {
    const c = await startCluster({
      functions: [route('fn')],
      endpoints: (port) => [
        { id: 'sb-1', function: 'fn', workerId: 'w-1', host: '127.0.0.1', port },
      ],
      asyncMode: true,
    });
    try {
      const res = await request(`${c.url}/some/path`, {
        method: 'POST',
        headers: { host: 'fn', 'x-custom': 'kept' },
        body: 'payload',
      });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'async-1');
      assert.equal(c.cp.enqueued.length, 1);
      const taken = c.cp.enqueued[0]!;
      assert.equal(taken.function, 'fn');
      assert.equal(taken.path, '/some/path');
      assert.equal(Buffer.from(taken.bodyBase64, 'base64').toString(), 'payload');
      const plain = await get(c.url, 'fn', '/');
      assert.equal(plain.text, 'async-2');
      // The dispatcher's attempt carries the invocation's id: it goes to the sandbox.
      const run = await request(`${c.url}/`, {
        headers: { host: 'fn', 'x-baton-invocation-id': 'async-1' },
      });
      assert.equal(run.statusCode, 200);
      await run.body.dump();
      assert.equal(c.cp.enqueued.length, 2, 'a plain request is taken too; the attempt is not');
    } finally {
      await c.close();
    }
  });
});

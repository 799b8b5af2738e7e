/** The internal RPC over real loopback sockets: unary, streaming, errors, deadlines, reconnects, bad frames. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { silentLogger } from '../../../src/shared/logger.js';
import type { RemoteError } from '../../../src/shared/errors.js';
import {
  ConflictError,
  DeadlineExceededError,
  UnavailableError,
} from '../../../src/shared/errors.js';
import { defineService, stream, unary } from '../../../src/rpc/contract.js';
import { RpcServer, type RpcServerOptions } from '../../../src/rpc/server.js';
import { RpcConnection } from '../../../src/rpc/client.js';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { tcpTransport } from '../../../src/rpc/transport.js';
import { InProcessTransport } from '../../../src/rpc/in-process-transport.js';

/** Sends raw text to an RPC port and collects what comes back until the server closes (or `lines` lines came). */
function rawExchange(port: number, text: string, lines = Infinity): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      answer += c;
      if (answer.split('\n').length > lines) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(answer));
    socket.write(text);
    setTimeout(() => socket.destroy(new Error(`no close; got ${answer}`)), 3000).unref();
  });
}

const echo = defineService('echo', {
  add: unary(z.object({ a: z.number(), b: z.number() }), z.object({ sum: z.number() })),
  fail: unary(z.object({}), z.object({})),
  slow: unary(z.object({ ms: z.number() }), z.object({ aborted: z.boolean() })),
  count: stream(z.object({ n: z.number().int() }), z.object({ i: z.number() })),
});

const handlers = {
  add: ({ a, b }: { a: number; b: number }) => Promise.resolve({ sum: a + b }),
  fail: () => Promise.reject(new ConflictError('already there')),
  slow: ({ ms }: { ms: number }, ctx: { signal: AbortSignal }) =>
    new Promise<{ aborted: boolean }>((resolve) => {
      const t = setTimeout(() => resolve({ aborted: false }), ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve({ aborted: true });
      });
    }),
  count: async ({ n }: { n: number }, emit: (item: { i: number }) => void) => {
    for (let i = 0; i < n; i++) {
      emit({ i });
      await new Promise((r) => setTimeout(r, 2));
    }
  },
};

async function serve(port = 0) {
  const server = new RpcServer({ logger: silentLogger() }).mount(echo, handlers);
  const addr = await server.listen(port, '127.0.0.1');
  return { server, port: addr.port };
}

describe('internal RPC', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  /** `server` (default: the echo service) listening, a connection to it, both closed after the suite. */
  async function connected(
    server = new RpcServer({ logger: silentLogger() }).mount(echo, handlers),
  ) {
    const { port } = await server.listen(0, '127.0.0.1');
    const conn = new RpcConnection({ host: '127.0.0.1', port, logger: silentLogger() });
    closers.push(
      () => conn.close(),
      () => server.close(),
    );
    return { port, conn };
  }

  /** The echo service on a server with `options`, listening and closed after the suite; its port. */
  async function listening(options: Omit<RpcServerOptions, 'logger'>): Promise<number> {
    const server = new RpcServer({ logger: silentLogger(), ...options }).mount(echo, handlers);
    const { port } = await server.listen(0, '127.0.0.1');
    closers.push(() => server.close());
    return port;
  }

  it('answers unary calls and validates requests', async () => {
    const { conn } = await connected();
    const client = conn.client(echo);
    assert.deepEqual(await client.add({ a: 2, b: 3 }), { sum: 5 });
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => client.add({ a: i, b: 1 })),
    );
    assert.equal(many[199]!.sum, 200);
    await assert.rejects(
      client.add({ a: 'x', b: 1 } as unknown as { a: number; b: number }),
      (err: RemoteError) => {
        assert.equal(err.code, 'BATON_ERR_INVALID_ARGUMENT');
        assert.match(err.message, /\/echo\/add: a:/);
        return true;
      },
    );
  });

  it('carries typed errors across with their code and status', async () => {
    const { conn } = await connected();
    await assert.rejects(conn.client(echo).fail({}), (err: RemoteError) => {
      assert.equal(err.code, 'BATON_ERR_CONFLICT');
      assert.equal(err.retryable, false);
      assert.equal(err.message, 'already there');
      return true;
    });
  });

  it('answers a handler that throws before returning its promise like one that rejects', async () => {
    const throwing = defineService('throwing', { now: unary(z.object({}), z.object({})) });
    const server = new RpcServer({ logger: silentLogger() }).mount(throwing, {
      now: (): Promise<Record<string, never>> => {
        throw new ConflictError('thrown, not rejected');
      },
    });
    const { conn } = await connected(server);
    for (let i = 0; i < 2; i++)
      await assert.rejects(conn.client(throwing).now({}), /thrown, not rejected/);
  });

  it('streams items as they are produced', async () => {
    const { conn } = await connected();
    const seen: number[] = [];
    await conn.client(echo).count({ n: 50 }, (item) => seen.push(item.i));
    assert.deepEqual(
      seen,
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it('enforces deadlines on both sides', async () => {
    const { conn } = await connected();
    await assert.rejects(
      conn.client(echo).slow({ ms: 2000 }, { deadlineMs: 100 }),
      DeadlineExceededError,
    );
  });

  it('fails fast when nobody listens, and reconnects once the server is back', async () => {
    const { server, port } = await serve();
    await server.close();
    const conn = new RpcConnection({ host: '127.0.0.1', port, logger: silentLogger() });
    closers.push(() => conn.close());
    const client = conn.client(echo);
    await assert.rejects(client.add({ a: 1, b: 1 }, { deadlineMs: 300 }), UnavailableError);
    const again = await serve(port);
    closers.push(() => again.server.close());
    let sum: number | undefined;
    for (let i = 0; i < 50 && sum === undefined; i++) {
      sum = await client.add({ a: 1, b: 1 }, { deadlineMs: 500 }).then(
        (r) => r.sum,
        () => undefined,
      );
    }
    assert.equal(sum, 2);
  });

  it('answers a caller that does not speak its frames with one error and closes, serving others on', async () => {
    const { port, conn } = await connected();
    const http = await rawExchange(
      port,
      'POST /worker/createSandboxes HTTP/1.1\r\nhost: x\r\n\r\n{}\n',
    );
    const refusal = JSON.parse(http.trim()) as { id: number; error: { code: string } };
    assert.equal(refusal.id, 0);
    assert.equal(refusal.error.code, 'BATON_ERR_INVALID_ARGUMENT');
    const unknown = await rawExchange(
      port,
      '{"id":1,"path":"/echo/nothing","body":{}}\n{"id":2,"path":"/echo/add","body":{"a":1,"b":2}}\n',
      2,
    );
    const frames = unknown
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number });
    assert.deepEqual(frames, [
      { id: 1, error: { code: 'BATON_ERR_NOT_FOUND', message: 'no rpc method /echo/nothing' } },
      { id: 2, ok: { sum: 3 } },
    ]);
    assert.deepEqual(await conn.client(echo).add({ a: 1, b: 1 }), { sum: 2 });
  });

  it('refuses a frame over its size limit before holding it whole', async () => {
    const port = await listening({ maxBodyBytes: 1000 });
    const answer = await rawExchange(
      port,
      `{"id":1,"path":"/echo/add","body":"${'x'.repeat(5000)}`,
    );
    const refusal = JSON.parse(answer.trim()) as { id: number; error: { code: string } };
    assert.deepEqual([refusal.id, refusal.error.code], [0, 'BATON_ERR_PAYLOAD_TOO_LARGE']);
  });

  it('closes a connection whose frame is begun and not finished in time, serving frames that finish', async () => {
    const port = await listening({ partialFrameTimeoutMs: 300 });
    // A whole frame sent in pieces within the time is answered.
    const socket = connect(port, '127.0.0.1');
    closers.push(() => Promise.resolve(void socket.destroy()));
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (chunk: string) => (text += chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('{"id":1,"path":"/echo/add",');
    await new Promise((r) => setTimeout(r, 100));
    socket.write('"body":{"a":1,"b":2}}\n{"id":2,"pa');
    const t0 = performance.now();
    await closed;
    const waited = performance.now() - t0;
    const frames = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; ok?: unknown; error?: { code: string } });
    assert.deepEqual(frames[0], { id: 1, ok: { sum: 3 } });
    assert.deepEqual([frames[1]!.id, frames[1]!.error!.code], [0, 'BATON_ERR_DEADLINE_EXCEEDED']);
    assert.ok(waited >= 250, `closed after ${waited} ms`);
  });

  it('aborts the handler when the caller gives up, and fails a call whose connection drops', async () => {
    let seen: AbortSignal | undefined;
    const hanging = defineService('hang', {
      wait: unary(z.object({}), z.object({})),
    });
    const server = new RpcServer({ logger: silentLogger() }).mount(hanging, {
      wait: (_req: Record<string, never>, ctx: { signal: AbortSignal }) => {
        seen = ctx.signal;
        return new Promise<Record<string, never>>(() => undefined);
      },
    });
    const { port } = await server.listen(0, '127.0.0.1');
    let lost = 0;
    const conn = new RpcConnection({
      host: '127.0.0.1',
      port,
      logger: silentLogger(),
      onSessionLost: () => lost++,
    });
    closers.push(() => conn.close());
    const client = conn.client(hanging);
    const caller = new AbortController();
    const call = client.wait({}, { signal: caller.signal });
    while (seen === undefined) await new Promise((r) => setTimeout(r, 5));
    caller.abort();
    await assert.rejects(call, /call aborted/);
    for (let i = 0; i < 100 && !seen.aborted; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(seen.aborted, true, "the server's handler saw the caller leave");
    const second = client.wait({}, { deadlineMs: 10_000 });
    // The server goes away with the call in flight: the call fails now, not at its deadline.
    const t0 = Date.now();
    await server.close();
    await assert.rejects(second, (err: Error) => err instanceof UnavailableError);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(lost, 1);
  });

  for (const [label, transport] of [
    ['sockets', tcpTransport],
    ['in-process', new InProcessTransport()],
  ] as const)
    it(`lets a handler wait on its call's signal any number of times without a leak warning (${label})`, async () => {
      // A worker's createSandboxes waits on one call's signal once per sandbox of its batch.
      const batch = defineService('batch', {
        wait: unary(z.object({ n: z.number() }), z.object({})),
      });
      const listener = transport.createListener(silentLogger()).mount(batch, {
        wait: async ({ n }: { n: number }, ctx: { signal: AbortSignal }) => {
          await Promise.all(
            Array.from({ length: n }, () => sleep(5, undefined, { signal: ctx.signal })),
          );
          return {};
        },
      });
      const { port } = await listener.listen(0, '127.0.0.1');
      const channel = transport.connect({ host: '127.0.0.1', port, logger: silentLogger() });
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      try {
        await channel.client(batch).wait({ n: 50 });
        await new Promise((r) => setImmediate(r));
      } finally {
        process.off('warning', onWarning);
        await channel.close();
        await listener.close();
      }
      assert.deepEqual(warnings, []);
    });

  it('rejects calls after close', async () => {
    const conn = new RpcConnection({ host: '127.0.0.1', port: 1, logger: silentLogger() });
    await conn.close();
    await assert.rejects(conn.client(echo).add({ a: 1, b: 1 }), /closed/);
  });
});

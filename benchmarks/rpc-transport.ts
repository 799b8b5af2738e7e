/**
 * Picks the internal RPC transport by measurement: Baton's RPC (JSON frames
 * over TCP, src/rpc, zod-validated on both ends) against @grpc/grpc-js with
 * protobuf (proto-loader), on the same message: a batch of sandbox creations
 * with full function specs. The server runs in a child process; each side
 * is measured one call at a time (latency) and with many calls in flight
 * (throughput), over loopback, with the CPU each side spends per call.
 *
 *   npm run bench:rpc -- --calls 5000 --batch 1 --out results/rpc.json
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { silentLogger } from '../src/shared/logger.js';
import { functionSpecSchema, compileFunctionSpec } from '../src/shared/function-spec.js';
import { defineService, unary } from '../src/rpc/contract.js';
import { RpcServer } from '../src/rpc/server.js';
import { RpcConnection } from '../src/rpc/client.js';
import { benchFlags, cpuPerUnit, intFlag, machine, printTable, writeResult } from './lib/bench.js';
import { latencyPercentiles } from '../src/loadgen/stats.js';

const PROTO = fileURLToPath(new URL('./rpc-transport.proto', import.meta.url));

const benchService = defineService('bench', {
  create: unary(
    z.object({ sandboxes: z.array(z.object({ id: z.string(), spec: functionSpecSchema })) }),
    z.object({ ids: z.array(z.string()) }),
  ),
});

type Transport = 'baton' | 'grpc';

interface CreateRequest {
  sandboxes: Array<{ id: string; spec: ReturnType<typeof compileFunctionSpec> }>;
}

// ---- server side (child process) ----

async function serve(kind: Transport): Promise<number> {
  if (kind === 'baton') {
    const server = new RpcServer({ logger: silentLogger() }).mount(benchService, {
      create: (req) => Promise.resolve({ ids: req.sandboxes.map((s) => s.id) }),
    });
    return (await server.listen(0, '127.0.0.1')).port;
  }
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: false }));
  const svc = (pkg.batonbench as grpc.GrpcObject).Worker as grpc.ServiceClientConstructor;
  const server = new grpc.Server();
  server.addService(svc.service, {
    create: (
      call: grpc.ServerUnaryCall<{ sandboxes: Array<{ id: string }> }, unknown>,
      cb: grpc.sendUnaryData<unknown>,
    ) => cb(null, { ids: call.request.sandboxes.map((s) => s.id) }),
  });
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

const serveArg = process.argv.indexOf('--serve');
if (serveArg >= 0) {
  const port = await serve(process.argv[serveArg + 1] as Transport);
  process.send?.({ port });
} else {
  await main();
}

// ---- client side ----

async function main(): Promise<void> {
  const v = benchFlags(
    process.argv.slice(2),
    'npm run bench:rpc -- [options]',
    'Baton RPC (JSON frames over TCP) against gRPC (grpc-js + protobuf) on one message.',
    {
      calls: {
        type: 'string',
        description: 'calls per measurement',
        defaultText: '5000',
        valueName: 'N',
      },
      batch: {
        type: 'string',
        description: 'sandboxes per call',
        defaultText: '1',
        valueName: 'N',
      },
      inflight: {
        type: 'string',
        description: 'calls in flight for the throughput run',
        defaultText: '64',
        valueName: 'N',
      },
    },
  );
  const calls = intFlag(v.calls, 'calls', 5000);
  const batch = intFlag(v.batch, 'batch', 1);
  const inflight = intFlag(v.inflight, 'inflight', 64);
  const request: CreateRequest = {
    sandboxes: Array.from({ length: batch }, (_, i) => ({
      id: `sb-${i}`,
      spec: compileFunctionSpec({ name: `fn-${i}`, image: 'trace', env: { MODE: 'bench' } }),
    })),
  };

  const rows: Array<Record<string, number | string>> = [];
  for (const kind of ['baton', 'grpc'] as const) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', kind], { stdio: 'inherit' });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.once('message', (m) => resolve((m as { port: number }).port));
        child.once('exit', (code) => reject(new Error(`${kind} server exited (${code})`)));
      });
      const client = await connect(kind, port);
      try {
        for (let i = 0; i < 500; i++) await client.call(request); // warm-up
        const lat: number[] = [];
        const pids = new Map([
          ['client', process.pid],
          ['server', child.pid!],
        ]);
        const { cpuUsPerUnit } = await cpuPerUnit(
          pids,
          async () => {
            for (let i = 0; i < calls; i++) {
              const t0 = performance.now();
              await client.call(request);
              lat.push(performance.now() - t0);
            }
          },
          () => calls,
        );
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: inflight }, async () => {
            while (next++ < calls) await client.call(request);
          }),
        );
        const elapsed = performance.now() - t0;
        rows.push({
          transport: kind,
          ...latencyPercentiles(lat),
          calls_per_s: Math.round(calls / (elapsed / 1000)),
          client_cpu_us_per_call: cpuUsPerUnit.client!,
          server_cpu_us_per_call: cpuUsPerUnit.server!,
        });
      } finally {
        client.close();
      }
    } finally {
      await stop(child);
    }
  }
  printTable(
    `Internal RPC, ${batch} sandbox(es) per call, ${calls} calls; throughput with ${inflight} in flight`,
    ['transport', 'p50 ms', 'p99 ms', 'calls/s', 'client CPU µs/call', 'server CPU µs/call'],
    rows.map((r) => [
      r.transport!,
      r.p50_ms!,
      r.p99_ms!,
      r.calls_per_s!,
      r.client_cpu_us_per_call!,
      r.server_cpu_us_per_call!,
    ]),
  );
  writeResult(v.out, {
    benchmark: 'rpc-transport',
    machine: machine(),
    calls,
    batch,
    inflight,
    results: rows,
  });
}

interface BenchClient {
  call: (req: CreateRequest) => Promise<unknown>;
  close: () => void;
}

async function connect(kind: Transport, port: number): Promise<BenchClient> {
  if (kind === 'baton') {
    const conn = new RpcConnection({ host: '127.0.0.1', port, logger: silentLogger() });
    const c = conn.client(benchService);
    return { call: (req) => c.create(req, { deadlineMs: 10_000 }), close: () => void conn.close() };
  }
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO, { keepCase: false }));
  const Svc = (pkg.batonbench as grpc.GrpcObject).Worker as grpc.ServiceClientConstructor;
  const c = new Svc(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  await new Promise<void>((resolve, reject) =>
    c.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())),
  );
  const create = (req: CreateRequest) =>
    new Promise((resolve, reject) =>
      (
        c.create as (
          r: unknown,
          o: grpc.CallOptions,
          cb: (e: Error | null, v: unknown) => void,
        ) => void
      )(toProto(req), { deadline: Date.now() + 10_000 }, (err, value) =>
        err ? reject(err) : resolve(value),
      ),
    );
  return { call: create, close: () => c.close() };
}

/** The same request in the proto's shape (the spec's fields the proto carries). */
function toProto(req: CreateRequest): unknown {
  return {
    sandboxes: req.sandboxes.map(({ id, spec }) => ({
      id,
      spec: {
        name: spec.name,
        image: spec.image,
        port: spec.port,
        cpuMilli: spec.cpuMilli,
        memoryMib: spec.memoryMib,
        concurrency: spec.concurrency,
        minScale: spec.minScale,
        coldStartTimeoutMs: spec.coldStartTimeoutMs,
        env: spec.env,
      },
    })),
  };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

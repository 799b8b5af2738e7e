/**
 * One suite for every SandboxRuntime. Each runtime the host supports runs it;
 * behaviour a runtime does not have by design is skipped with the reason.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { imageDir } from '../helpers/processes.js';
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../src/shared/logger.js';
import { SandboxStartError } from '../../src/shared/errors.js';
import { PortPool } from '../../src/worker/ports.js';
import { PooledIsolateRuntime } from '../../src/worker/runtimes/isolate/pooled-isolate-runtime.js';
import { PerRequestIsolateRuntime } from '../../src/worker/runtimes/isolate/per-request-isolate-runtime.js';
import { ProcessRuntime } from '../../src/worker/runtimes/process/process-runtime.js';
import { SimulatedRuntime } from '../../src/worker/runtimes/simulated/simulated-runtime.js';
import { ContainerdRuntime } from '../../src/worker/runtimes/containerd/containerd-runtime.js';
import { ctr } from '../../src/worker/runtimes/containerd/ctr.js';
import type { CreateOptions, SandboxRuntime } from '../../src/worker/runtimes/sandbox-runtime.js';
import type { FunctionSpec, FunctionSpecInput } from '../../src/shared/function-spec.js';
import { spec as baseSpec } from '../helpers/specs.js';
import {
  buildTestImage,
  containerdUnsupported,
  startContainerd,
  type TestContainerd,
} from '../helpers/containerd.js';
import { isolatesUnsupported } from '../helpers/isolates.js';
import { httpRequest } from '../helpers/http.js';

interface RuntimeCase {
  name: string;
  make: () => SandboxRuntime;
  /** Why sandboxes of this runtime cannot crash on their own, if so. */
  noCrashes?: string;
  /** Why this runtime accepts any image, if so. */
  anyImage?: string;
  /** Why this runtime runs no user code (so nothing of it can crash), if so. */
  noUserCode?: string;
  /** The CPU-time limit per request the runtime enforces, or why it has none. */
  cpuLimitMs: number | string;
  /** Why this host cannot run the runtime at all, if so. */
  unsupported?: string | undefined;
  /** Runs before the suite (after the check that the host supports it), e.g. to start a daemon. */
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
  /** The image this runtime runs for a built-in name (trace, empty, hello), when it has its own. */
  image?: (builtin: string) => string;
  /** An image whose sandbox writes "boom at import" and exits at start (default: a JS module). */
  crashingImage?: () => string;
  /** An image whose sandbox exits with code 7 soon after a GET of `path` (default: a JS module, /die). */
  dyingImage?: () => { image: string; path: string };
  /** What the runtime says about an image that does not exist at all. */
  missingImage?: RegExp;
  /** How every sandbox of the suite is created. */
  createOptions?: CreateOptions;
}

/**
 * Isolates get short limits here so that the runaway tests are quick, but long
 * enough that the memory hog reaches its heap limit first: V8's collections
 * near the limit cost 100-270 ms of the isolate's CPU on a 2-core VM, and a
 * slower CI machine once spent 300 ms there (the CPU limit then won the race).
 */
const ISOLATE_CPU_LIMIT_MS = 1000;

const cases: RuntimeCase[] = [
  {
    name: 'process',
    make: () =>
      new ProcessRuntime({
        host: '127.0.0.1',
        // Below the kernel's ephemeral range (32768-60999), where client sockets of
        // concurrently running tests would otherwise take sandbox ports.
        ports: new PortPool(31000, 31199),
        logger: silentLogger(),
        stopGraceMs: 500,
      }),
    cpuLimitMs: 'process sandboxes get CPU quotas from cgroups, not per-request limits',
  },
  {
    name: 'process (pre-warmed pool)',
    make: () =>
      new ProcessRuntime({
        host: '127.0.0.1',
        ports: new PortPool(31200, 31399),
        logger: silentLogger(),
        stopGraceMs: 500,
        prewarm: 2,
      }),
    cpuLimitMs: 'process sandboxes get CPU quotas from cgroups, not per-request limits',
  },
  {
    name: 'isolate',
    make: () =>
      new PooledIsolateRuntime({
        host: '127.0.0.1',
        ports: new PortPool(30600, 30799),
        logger: silentLogger(),
        cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
      }),
    unsupported: isolatesUnsupported,
    noCrashes: 'an isolate has no process to exit: it dies only by its limits (tested below)',
    cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
  },
  {
    name: 'isolate (standby sandboxes)',
    make: () =>
      new PooledIsolateRuntime({
        host: '127.0.0.1',
        ports: new PortPool(31450, 31599),
        logger: silentLogger(),
        cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
      }),
    createOptions: { standby: true },
    unsupported: isolatesUnsupported,
    noCrashes: 'an isolate has no process to exit: it dies only by its limits (tested below)',
    cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
  },
  {
    name: 'isolate-per-request',
    make: () =>
      new PerRequestIsolateRuntime({
        host: '127.0.0.1',
        ports: new PortPool(30800, 30999),
        logger: silentLogger(),
        cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
      }),
    unsupported: isolatesUnsupported,
    noCrashes: 'nothing lives between requests: each request has its own isolate',
    cpuLimitMs: ISOLATE_CPU_LIMIT_MS,
  },
  {
    name: 'simulated',
    make: () => new SimulatedRuntime({ host: '127.0.0.1', delayMs: 40, logger: silentLogger() }),
    noCrashes: 'simulated sandboxes are entries in a shared server and cannot exit on their own',
    anyImage: 'the simulated runtime serves every image from its shared workload server',
    noUserCode: 'simulated sandboxes run no user code',
    cpuLimitMs: 'simulated sandboxes run no user code',
  },
];

/** A containerd of the suite's own, and images built from busybox-static. */
let containerd: TestContainerd | undefined;
const WORKLOAD_IMAGE = 'baton.test/workload:1';
const EMPTY_IMAGE = 'baton.test/empty:1';
const CRASH_IMAGE = 'baton.test/crash:1';
const containerdRuntime = () =>
  new ContainerdRuntime({
    host: '127.0.0.1',
    ports: new PortPool(30000, 30099),
    logger: silentLogger(),
    address: containerd!.address,
    namespace: containerd!.namespace,
    stopGraceMs: 500,
  });
cases.push({
  name: 'containerd',
  make: containerdRuntime,
  unsupported: containerdUnsupported,
  async setup() {
    containerd = await startContainerd();
    const images = [
      { ref: WORKLOAD_IMAGE, cmd: ['/bin/start.sh'] },
      { ref: EMPTY_IMAGE, cmd: ['/bin/start.sh'], env: ['WORKLOAD=empty'] },
      { ref: CRASH_IMAGE, cmd: ['/bin/sh', '-c', 'echo boom at import >&2; exit 3'] },
    ];
    for (const image of images)
      await ctr(containerd, ['images', 'import', buildTestImage(containerd.dir, image)]);
  },
  teardown: () => containerd!.stop(),
  image: (builtin) => (builtin === 'trace' ? WORKLOAD_IMAGE : EMPTY_IMAGE),
  crashingImage: () => CRASH_IMAGE,
  dyingImage: () => ({ image: WORKLOAD_IMAGE, path: '/?die' }),
  missingImage: /not an image reference/,
  cpuLimitMs: 'containers get CPU quotas from cgroups, not per-request limits',
});

let seq = 0;
const nextId = () => `sb-test-${process.pid}-${++seq}`;

for (const c of cases) {
  describe(`SandboxRuntime conformance: ${c.name}`, { skip: c.unsupported }, () => {
    let rt: SandboxRuntime;
    let dir: string;
    const spec = (o: Partial<FunctionSpecInput>) =>
      baseSpec({ ...o, ...(o.image !== undefined && c.image ? { image: c.image(o.image) } : {}) });
    const create = (id: string, s: FunctionSpec) => rt.create(id, s, undefined, c.createOptions);
    before(async () => {
      await c.setup?.();
      rt = c.make();
      dir = imageDir('baton-rt-');
      const report = await rt.checkHost();
      assert.ok(report.notes.length > 0);
    });
    after(async () => {
      await rt?.close();
      await c.teardown?.();
      rmSync(dir, { recursive: true, force: true });
    });

    it('says what a sandbox costs: a floor placement charges, and creations at once', () => {
      const { cpuMilli, memoryMib } = rt.sandboxFloor;
      for (const n of [cpuMilli, memoryMib]) assert.ok(Number.isFinite(n) && n >= 0, String(n));
      assert.ok(rt.creationConcurrency >= 1);
    });

    it('creates a sandbox that is ready to serve the trace workload', async () => {
      const id = nextId();
      const sb = await create(id, spec({ name: 'conf-trace', image: 'trace' }));
      assert.equal(sb.id, id);
      assert.equal(sb.function, 'conf-trace');
      assert.ok(sb.timings.totalMs >= 0);
      const res = await httpRequest(`http://${sb.host}:${sb.port}/`, {
        headers: {
          host: 'conf-trace',
          workload: 'trace',
          function: 'conf-trace',
          requested_cpu: '5',
          requested_memory: '1',
          multiplier: '0',
        },
      });
      assert.equal(res.status, 200);
      const body = JSON.parse(res.text) as {
        Status: string;
        Function: string;
        ExecutionTime: number;
      };
      assert.equal(body.Status, 'OK');
      assert.equal(body.Function, 'conf-trace');
      assert.ok(body.ExecutionTime >= 5000, `ExecutionTime ${body.ExecutionTime} µs`);
      assert.deepEqual(
        rt.list().map((s) => s.id),
        [id],
      );
      assert.equal(await rt.delete(id), true);
    });

    it('answers bad trace integers with 400', async () => {
      const id = nextId();
      const sb = await create(id, spec({ name: 'conf-bad', image: 'trace' }));
      const res = await httpRequest(`http://${sb.host}:${sb.port}/`, {
        headers: { host: 'conf-bad', requested_cpu: 'ten' },
      });
      assert.equal(res.status, 400);
      assert.match(res.text, /requested_cpu/);
      await rt.delete(id);
    });

    it('creates many sandboxes concurrently', async () => {
      const ids = Array.from({ length: 8 }, nextId);
      const created = await Promise.all(
        ids.map((id, i) => create(id, spec({ name: `conf-many-${i}`, image: 'empty' }))),
      );
      assert.equal(new Set(created.map((s) => s.id)).size, 8);
      for (const sb of created) {
        const res = await httpRequest(`http://${sb.host}:${sb.port}/`, {
          headers: { host: sb.function },
        });
        assert.equal(res.status, 200);
        assert.match(res.text, /OK - EMPTY/);
      }
      assert.equal(rt.list().length, 8);
      await Promise.all(ids.map((id) => rt.delete(id)));
      assert.equal(rt.list().length, 0);
    });

    it('delete is idempotent and unknown ids resolve false', async () => {
      const id = nextId();
      await create(id, spec({ name: 'conf-del', image: 'hello' }));
      assert.equal(await rt.delete(id), true);
      assert.equal(await rt.delete(id), false);
      assert.equal(await rt.delete('no-such-sandbox'), false);
    });

    it('a deleted sandbox no longer serves its function', async () => {
      const id = nextId();
      const sb = await create(id, spec({ name: 'conf-stop', image: 'hello' }));
      await rt.delete(id);
      // A process sandbox is gone (connection refused); a shared server no longer knows the function (404).
      const outcome = await httpRequest(`http://${sb.host}:${sb.port}/`, {
        headers: { host: 'conf-stop' },
      }).then(
        (res) => res.status,
        () => 'refused',
      );
      assert.ok(outcome === 'refused' || outcome === 404, `deleted sandbox answered ${outcome}`);
    });

    it('rejects an image it cannot run with SandboxStartError', { skip: c.anyImage }, async () => {
      await assert.rejects(
        create(nextId(), baseSpec({ name: 'conf-img', image: 'docker.io/library/nginx:latest' })),
        SandboxStartError,
      );
      await assert.rejects(
        create(nextId(), baseSpec({ name: 'conf-img', image: '/no/such/dir' })),
        c.missingImage ?? /does not exist/,
      );
    });

    it(
      'reports a sandbox that crashes at start with its output',
      { skip: c.noUserCode },
      async () => {
        let image = c.crashingImage?.();
        if (image === undefined) {
          image = join(dir, 'crash.mjs');
          writeFileSync(image, 'throw new Error("boom at import");\n');
        }
        await assert.rejects(
          create(nextId(), baseSpec({ name: 'conf-crash', image })),
          (err: Error) => {
            assert.ok(err instanceof SandboxStartError);
            assert.match(err.message, /boom at import/);
            return true;
          },
        );
      },
    );

    it('reports a ready sandbox that dies', { skip: c.noCrashes }, async () => {
      let dying = c.dyingImage?.();
      if (dying === undefined) {
        dying = { image: dir, path: '/die' };
        writeFileSync(
          join(dir, 'index.mjs'),
          'export default (req) => { if (new URL(req.url).pathname === "/die") setTimeout(() => process.exit(7), 5); return new Response("ok"); };\n',
        );
      }
      const exits: Array<[string, string]> = [];
      const died = new Promise<void>((resolve) =>
        rt.onExit((id, reason) => {
          exits.push([id, reason]);
          resolve();
        }),
      );
      const id = nextId();
      const sb = await create(id, baseSpec({ name: 'conf-die', image: dying.image }));
      const res = await httpRequest(`http://${sb.host}:${sb.port}${dying.path}`);
      assert.equal(res.status, 200);
      await died;
      assert.equal(exits[0]?.[0], id);
      assert.match(exits[0]?.[1] ?? '', /exited with code 7/);
      assert.equal(rt.list().length, 0);
    });

    const limitSkip = typeof c.cpuLimitMs === 'string' ? c.cpuLimitMs : undefined;
    const limitMs = typeof c.cpuLimitMs === 'number' ? c.cpuLimitMs : 0;

    it(
      'stops a handler that loops forever within twice its CPU limit; the function serves again',
      { skip: limitSkip },
      async () => {
        writeFileSync(
          join(dir, 'spin.mjs'),
          'export default (req) => { if (new URL(req.url).pathname === "/spin") for (;;) {} return new Response("fine"); };\n',
        );
        const exits: string[] = [];
        rt.onExit((_id, reason) => exits.push(reason));
        const sb = await create(
          nextId(),
          spec({ name: 'conf-spin', image: join(dir, 'spin.mjs') }),
        );
        const t0 = performance.now();
        const res = await httpRequest(`http://${sb.host}:${sb.port}/spin`);
        const took = performance.now() - t0;
        assert.equal(res.status, 500);
        assert.match(res.text, /CPU time limit/);
        assert.ok(took < 2 * limitMs, `stopped after ${Math.round(took)} ms (limit ${limitMs} ms)`);
        // A pooled sandbox is reported and gone (the control plane replaces it); per request or
        // standby, it serves on (with a new isolate).
        const live = rt.list().some((s) => s.id === sb.id);
        const next = live
          ? sb
          : await create(nextId(), spec({ name: 'conf-spin', image: join(dir, 'spin.mjs') }));
        if (!live) assert.match(exits.join('\n'), /CPU time limit/);
        const again = await httpRequest(`http://${next.host}:${next.port}/`);
        assert.equal(again.status, 200);
        assert.equal(again.text, 'fine');
        await rt.delete(next.id);
      },
    );

    it(
      'stops a handler that allocates without bound at its memory limit; the function serves again',
      { skip: limitSkip },
      async () => {
        writeFileSync(
          join(dir, 'hog.mjs'),
          'const keep = []; export default (req) => { if (new URL(req.url).pathname === "/hog") for (;;) keep.push(new Array(1e5).fill(Math.random())); return new Response("fine"); };\n',
        );
        const createHog = () =>
          create(nextId(), spec({ name: 'conf-hog', image: join(dir, 'hog.mjs'), memoryMib: 32 }));
        const sb = await createHog();
        const res = await httpRequest(`http://${sb.host}:${sb.port}/hog`);
        assert.equal(res.status, 500);
        assert.match(res.text, /memory limit of 32 MiB/);
        const live = rt.list().some((s) => s.id === sb.id);
        const next = live ? sb : await createHog();
        const again = await httpRequest(`http://${next.host}:${next.port}/`);
        assert.equal(again.text, 'fine');
        await rt.delete(next.id);
      },
    );
  });
}

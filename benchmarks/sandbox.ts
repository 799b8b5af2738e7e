/**
 * Sandbox cold starts per runtime and mode (issue: sandboxes that isolate):
 *
 * 1. Sandbox start: the runtime alone, in this process, creating a sandbox of
 *    the built-in `hello` image and timing creation to its first successful
 *    answer; then the memory one sandbox costs while `--memory-sandboxes` of
 *    them run (see `memoryPerSandbox`).
 * 2. End to end: `baton up` with that runtime; each of `--runs` functions
 *    (none warm) is invoked once through the data plane, one at a time with a
 *    pause between, so every invocation is an unloaded cold start (the data
 *    plane's `x-baton-start: cold` confirms it).
 *
 * `process` runs with the host's isolation (bubblewrap and cgroups where
 * present) with and without the pre-warmed pool. `containerd` runs against a
 * containerd the benchmark starts (state under a temporary directory), with
 * a busybox httpd image built from the host's busybox-static, as the tests do,
 * and also reports what one `ctr` command costs (`ctr_call_p50_ms`).
 *
 *   npm run bench:sandbox -- --runs 50 --out results/sandbox.json
 */
import { readFileSync, readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirigentForm, registerMany } from '../src/loadgen/dirigent-client.js';
import { H2cClient } from '../src/loadgen/h2c-client.js';
import { latencyPercentiles, round } from '../src/loadgen/stats.js';
import { silentLogger } from '../src/shared/logger.js';
import { compileFunctionSpec } from '../src/shared/function-spec.js';
import { PortPool } from '../src/worker/ports.js';
import type * as PooledModule from '../src/worker/runtimes/isolate/pooled-isolate-runtime.js';
import type * as PerRequestModule from '../src/worker/runtimes/isolate/per-request-isolate-runtime.js';
import type * as ProcessModule from '../src/worker/runtimes/process/process-runtime.js';
import type { ProcessRuntime as ProcessRuntimeType } from '../src/worker/runtimes/process/process-runtime.js';
import type { SandboxRuntime } from '../src/worker/runtimes/sandbox-runtime.js';
import { ContainerdRuntime } from '../src/worker/runtimes/containerd/containerd-runtime.js';
import { ctr } from '../src/worker/runtimes/containerd/ctr.js';
import {
  buildTestImage,
  containerdUnsupported,
  startContainerd,
  type TestContainerd,
} from '../test/helpers/containerd.js';
import { parentPid } from '../test/helpers/processes.js';
import {
  benchFlags,
  intFlag,
  machine,
  onInterrupt,
  printTable,
  startCluster,
  writeResult,
} from './lib/bench.js';

// The runtimes as built (dist/), as a worker runs them: from source, every
// process sandbox would start through the tsx loader.
const DIST_PROCESS = '../dist/worker/runtimes/process/process-runtime.js';
const DIST_POOLED = '../dist/worker/runtimes/isolate/pooled-isolate-runtime.js';
const DIST_PER_REQUEST = '../dist/worker/runtimes/isolate/per-request-isolate-runtime.js';
const { ProcessRuntime } = (await import(DIST_PROCESS)) as typeof ProcessModule;
const { PooledIsolateRuntime } = (await import(DIST_POOLED)) as typeof PooledModule;
const { PerRequestIsolateRuntime } = (await import(DIST_PER_REQUEST)) as typeof PerRequestModule;

interface Variant {
  label: string;
  upArgs: () => string[];
  make: () => SandboxRuntime;
  /** Image the functions run (default: the built-in hello). */
  image?: string;
  /** Why this host cannot run the variant, if so. */
  unsupported?: string | undefined;
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
  /** Memory one running sandbox costs, MiB. */
  memoryOf?: (rt: SandboxRuntime, id: string) => Promise<number>;
  /** Waits until the runtime is as ready for the next creation as it gets on its own. */
  settle?: (rt: SandboxRuntime) => Promise<void>;
  /** Further figures of this runtime, measured before its teardown. */
  extra?: () => Promise<Record<string, number>>;
}

/** Below the kernel's ephemeral range, apart from the worker default (20000-29999). */
const ports = (first: number) => new PortPool(first, first + 999);
const waitWarm = async (rt: SandboxRuntime) => {
  const end = Date.now() + 10_000;
  while ((rt as ProcessRuntimeType).warmHosts < 1 && Date.now() < end) await sleep(5);
};
const logger = silentLogger();
let containerd: TestContainerd | undefined;
let forgetContainerd = () => {};
const CONTAINERD_IMAGE = 'baton.bench/busybox-httpd:1';
const VARIANTS: Variant[] = [
  {
    label: 'process',
    upArgs: () => ['--runtime', 'process', '--prewarm', '0'],
    make: () => new ProcessRuntime({ host: '127.0.0.1', ports: ports(12000), logger }),
  },
  {
    label: 'process (pre-warmed pool)',
    upArgs: () => ['--runtime', 'process', '--prewarm', '2'],
    make: () => new ProcessRuntime({ host: '127.0.0.1', ports: ports(13000), logger, prewarm: 2 }),
    settle: waitWarm,
  },
  {
    label: 'isolate',
    upArgs: () => ['--runtime', 'isolate'],
    make: () => new PooledIsolateRuntime({ host: '127.0.0.1', ports: ports(14000), logger }),
  },
  {
    label: 'isolate-per-request',
    upArgs: () => ['--runtime', 'isolate-per-request'],
    make: () => new PerRequestIsolateRuntime({ host: '127.0.0.1', ports: ports(15000), logger }),
  },
  {
    label: 'containerd',
    unsupported: containerdUnsupported,
    image: CONTAINERD_IMAGE,
    upArgs: () => ['--runtime', 'containerd', '--containerd-address', containerd!.address],
    make: () =>
      new ContainerdRuntime({
        host: '127.0.0.1',
        ports: ports(16000),
        logger,
        address: containerd!.address,
        namespace: containerd!.namespace,
      }),
    async setup() {
      // `baton up` uses the workers' default namespace, so the image goes there.
      containerd = await startContainerd('baton');
      forgetContainerd = onInterrupt(() => containerd!.stop());
      const tar = buildTestImage(containerd.dir, {
        ref: CONTAINERD_IMAGE,
        cmd: ['/bin/start.sh'],
        env: ['WORKLOAD=empty'],
      });
      await ctr(containerd, ['images', 'import', tar]);
    },
    teardown: () => {
      forgetContainerd();
      return containerd!.stop();
    },
    // What a `ctr` process costs (start, connect, one call): the most that driving
    // containerd through its gRPC API instead could save per command.
    async extra() {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await ctr(containerd!, ['version']);
        times.push(performance.now() - t0);
      }
      return { ctr_call_p50_ms: latencyPercentiles(times).p50_ms };
    },
    // The container's processes and its shim (the task's parent), which exists per container.
    async memoryOf(_rt, id) {
      const line = (await ctr(containerd!, ['tasks', 'ls']))
        .split('\n')
        .find((l) => l.startsWith(`${id} `));
      const shim = parentPid(Number(line?.trim().split(/\s+/)[1]));
      if (shim === undefined) throw new Error(`no running task for ${id}`);
      return treePssMib(shim);
    },
  },
];

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:sandbox -- [options]',
  'Cold start per sandbox runtime: sandbox creation to first answer, memory per sandbox, and unloaded cold invocations through Baton.',
  {
    runs: {
      type: 'string',
      description: 'cold starts measured per runtime (each way)',
      defaultText: '50',
      valueName: 'N',
    },
    'memory-sandboxes': {
      type: 'string',
      description: 'sandboxes run at once to measure memory per sandbox',
      defaultText: '10',
      valueName: 'N',
    },
    'gap-ms': {
      type: 'string',
      description: 'pause between end-to-end cold invocations',
      defaultText: '300',
      valueName: 'MS',
    },
    only: {
      type: 'string',
      description: `comma-separated runtimes (${VARIANTS.map((x) => x.label).join(', ')})`,
      valueName: 'LIST',
    },
  },
);
const runs = intFlag(v.runs, 'runs', 50);
const memorySandboxes = intFlag(v['memory-sandboxes'], 'memory-sandboxes', 10);
const gapMs = intFlag(v['gap-ms'], 'gap-ms', 300, 0);
const only = typeof v.only === 'string' ? v.only.split(',').map((s) => s.trim()) : undefined;
const unknown = only?.filter((o) => !VARIANTS.some((x) => x.label === o)) ?? [];
if (unknown.length > 0) {
  process.stderr.write(`--only: unknown runtime "${unknown[0]}"\n`);
  process.exit(2);
}
const variants = VARIANTS.filter((x) => only === undefined || only.includes(x.label));

/** Proportional set size (shared pages split among their users) of a process and its descendants, MiB. */
function treePssMib(root: number): number {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = parentPid(name);
    if (ppid !== undefined) children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  let kib = 0;
  for (const pending = [root]; pending.length > 0;) {
    const pid = pending.pop()!;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kib += Number(m?.[1] ?? 0);
    } catch {
      // gone
    }
    pending.push(...(children.get(pid) ?? []));
  }
  return kib / 1024;
}

/**
 * Memory one running sandbox costs: process sandboxes by the PSS of their
 * process trees; isolates (which live in this process) by the growth of this
 * process's resident set after a collection.
 */
async function memoryPerSandbox(
  variant: Variant,
  rt: SandboxRuntime,
  ids: string[],
  rssBefore: number,
): Promise<number> {
  if (variant.memoryOf !== undefined) {
    let sum = 0;
    for (const id of ids) sum += await variant.memoryOf(rt, id);
    return sum / ids.length;
  }
  if (rt instanceof ProcessRuntime)
    return ids.reduce((sum, id) => sum + treePssMib(rt.hostPid(id) ?? -1), 0) / ids.length;
  collectGarbage();
  await sleep(200);
  return Math.max(0, process.memoryUsage().rss / 2 ** 20 - rssBefore) / ids.length;
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

async function firstAnswer(host: string, port: number): Promise<void> {
  const res = await fetch(`http://${host}:${port}/`);
  await res.text();
  if (res.status !== 200) throw new Error(`sandbox answered ${res.status}`);
}

/** Part 1: the runtime alone. */
async function sandboxStart(variant: Variant) {
  const rt = variant.make();
  const forget = onInterrupt(() => rt.close());
  await rt.checkHost();
  try {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      await variant.settle?.(rt);
      const spec = compileFunctionSpec({ name: `bench-${i}`, image: variant.image ?? 'hello' });
      const t0 = performance.now();
      const sb = await rt.create(`bench-sb-${i}`, spec);
      await firstAnswer(sb.host, sb.port);
      times.push(performance.now() - t0);
      await rt.delete(sb.id);
    }
    await variant.settle?.(rt);
    collectGarbage();
    await sleep(200);
    const rssBefore = process.memoryUsage().rss / 2 ** 20;
    const many = await Promise.all(
      Array.from({ length: memorySandboxes }, (_, i) =>
        rt.create(
          `bench-mem-${i}`,
          compileFunctionSpec({ name: `mem-${i}`, image: variant.image ?? 'hello' }),
        ),
      ),
    );
    for (const sb of many) await firstAnswer(sb.host, sb.port);
    const perSandboxMib = await memoryPerSandbox(
      variant,
      rt,
      many.map((sb) => sb.id),
      rssBefore,
    );
    await Promise.all(many.map((sb) => rt.delete(sb.id)));
    return { ...latencyPercentiles(times), memory_per_sandbox_mib: round(perSandboxMib, 1) };
  } finally {
    forget();
    await rt.close();
  }
}

const WARM_REQUESTS = 50;

/** Part 2: cold invocations through `baton up`, then warm ones. */
async function endToEnd(variant: Variant) {
  const cluster = await startCluster([...variant.upArgs(), '--workers', '1']);
  const client = new H2cClient(cluster.proxy, 1);
  try {
    const names = Array.from({ length: runs }, (_, i) => `cold-${i}`);
    await registerMany(
      cluster.registration,
      names.map((n) => dirigentForm(n, variant.image ?? 'hello')),
      8,
    );
    await sleep(1_000); // let a pre-warmed pool fill
    const times: number[] = [];
    let notCold = 0;
    for (const name of names) {
      const t0 = performance.now();
      const r = await client.request(name, {}, '/', 60_000);
      const ms = performance.now() - t0;
      if (r.status !== 200) throw new Error(`${name}: ${r.status} ${r.error ?? r.body}`);
      if (r.headers['x-baton-start'] !== 'cold') notCold++;
      times.push(ms);
      await sleep(gapMs);
    }
    // Warm, for comparison: the first function again, one request at a time
    // (per request, each still gets a fresh isolate).
    const warm: number[] = [];
    for (let i = 0; i < WARM_REQUESTS; i++) {
      const t0 = performance.now();
      const r = await client.request(names[0]!, {}, '/', 60_000);
      if (r.status !== 200) throw new Error(`${names[0]}: ${r.status} ${r.error ?? r.body}`);
      warm.push(performance.now() - t0);
    }
    return {
      ...latencyPercentiles(times),
      warm_p50_ms: latencyPercentiles(warm).p50_ms,
      not_cold: notCold,
    };
  } finally {
    await client.close();
    await cluster.stop();
  }
}

const results: Array<Record<string, unknown>> = [];
for (const variant of variants) {
  process.stdout.write(
    `${variant.label}: ${runs} sandbox starts, then ${runs} cold invocations through baton up...\n`,
  );
  if (variant.unsupported !== undefined) {
    process.stdout.write(`${variant.label}: skipped: ${variant.unsupported}\n`);
    continue;
  }
  await variant.setup?.();
  let start: Awaited<ReturnType<typeof sandboxStart>>;
  let e2e: Awaited<ReturnType<typeof endToEnd>>;
  let extra: Record<string, number>;
  try {
    start = await sandboxStart(variant);
    e2e = await endToEnd(variant);
    extra = (await variant.extra?.()) ?? {};
  } finally {
    await variant.teardown?.();
  }
  results.push({
    runtime: variant.label,
    start_p50_ms: start.p50_ms,
    start_p99_ms: start.p99_ms,
    memory_per_sandbox_mib: start.memory_per_sandbox_mib,
    e2e_cold_p50_ms: e2e.p50_ms,
    e2e_cold_p99_ms: e2e.p99_ms,
    e2e_warm_p50_ms: e2e.warm_p50_ms,
    e2e_not_cold: e2e.not_cold,
    ...extra,
  });
  for (const [k, value] of Object.entries(extra))
    process.stdout.write(`${variant.label}: ${k} ${value}\n`);
}

printTable(
  `Sandbox cold starts (${runs} runs each; hello image, containerd: busybox httpd; unloaded)`,
  [
    'runtime',
    'start p50 ms',
    'start p99 ms',
    'MiB/sandbox',
    'e2e cold p50 ms',
    'e2e cold p99 ms',
    'e2e warm p50 ms',
  ],
  results.map((r) => [
    r.runtime as string,
    r.start_p50_ms as number,
    r.start_p99_ms as number,
    r.memory_per_sandbox_mib as number,
    r.e2e_cold_p50_ms as number,
    r.e2e_cold_p99_ms as number,
    r.e2e_warm_p50_ms as number,
  ]),
);
writeResult(v.out, { benchmark: 'sandbox', machine: machine(), runs, results });

/**
 * Asynchronous invocations: how fast they are accepted (202 once durable in
 * the control plane's store) and completed, and the delay from acceptance to
 * completion, with the embedded (LMDB) store and with Redis (appendfsync
 * always), each on its own `baton up` (simulated runtime, 2 workers). Also
 * the control plane's and data plane's CPU per invocation.
 *
 *   npm run build && npm run bench:async -- --count 2000 --out results/async.json
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import {
  benchFlags,
  cpuPerUnit,
  daemonPids,
  intFlag,
  machine,
  printTable,
  startCluster,
  writeResult,
} from './lib/bench.js';
import { latencyPercentiles, round } from '../src/loadgen/stats.js';
import { freePort, refusesConnections } from '../src/shared/port-probe.js';

const v = benchFlags(
  process.argv.slice(2),
  'npm run bench:async -- [options]',
  'Submits many asynchronous invocations and times their acceptance and completion, per store.',
  {
    count: {
      type: 'string',
      description: 'invocations per store',
      defaultText: '2000',
      valueName: 'N',
    },
    parallel: {
      type: 'string',
      description: 'submissions in flight at once',
      defaultText: '16',
      valueName: 'P',
    },
  },
);
const count = intFlag(v.count, 'count', 2000);
const parallel = intFlag(v.parallel, 'parallel', 16);

/** A redis-server of the benchmark's own, durable as the Redis store demands; ended by PID. */
async function startRedis(): Promise<{ url: string; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-redis-'));
  const port = await freePort('127.0.0.1');
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
    ],
    { stdio: 'ignore' },
  );
  // Up once its port takes connections (5 s at most).
  for (let i = 0; i < 100 && (await refusesConnections('127.0.0.1', port)); i++) await sleep(50);
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function run(store: 'embedded' | 'redis') {
  const redis = store === 'redis' ? await startRedis() : undefined;
  const storeArgs = redis === undefined ? [] : ['--store', 'redis', '--redis-url', redis.url];
  const cluster = await startCluster(['--runtime', 'simulated', '--workers', '2', ...storeArgs]);
  try {
    const put = await request(`${cluster.registration}/v1/functions/async-bench`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'empty', concurrency: 100, minScale: 1 }),
    });
    if (put.statusCode >= 300) throw new Error(`registration: ${await put.body.text()}`);
    await put.body.dump();
    const pids = await daemonPids(cluster.registration);
    const ids: string[] = [];
    const t0 = performance.now();
    let acceptedMs = 0;
    const { cpuUsPerUnit } = await cpuPerUnit(
      new Map([...pids].filter(([n]) => n === 'control-plane' || n === 'data-plane')),
      async () => {
        let next = 0;
        await Promise.all(
          Array.from({ length: parallel }, async () => {
            while (next < count) {
              next++;
              const res = await request(`${cluster.proxy}/`, {
                method: 'POST',
                headers: { host: 'async-bench', 'x-baton-async': '1' },
                body: 'x',
              });
              const text = await res.body.text();
              if (res.statusCode !== 202) throw new Error(`${res.statusCode} ${text}`);
              ids.push((JSON.parse(text) as { id: string }).id);
            }
          }),
        );
        acceptedMs = performance.now() - t0;
        // Done once the last ones are: invocations finish roughly in order.
        for (const id of ids.slice(-parallel))
          for (;;) {
            const r = await request(`${cluster.registration}/v1/invocations/${id}`);
            const state = ((await r.body.json()) as { state: string }).state;
            if (state !== 'queued' && state !== 'running') break;
            await sleep(20);
          }
        return count;
      },
      (n) => n,
    );
    const completedMs = performance.now() - t0;
    const delays: number[] = [];
    let succeeded = 0;
    for (const id of ids) {
      const r = await request(`${cluster.registration}/v1/invocations/${id}`);
      const inv = (await r.body.json()) as {
        state: string;
        acceptedAt: string;
        finishedAt: string | null;
      };
      if (inv.state === 'succeeded') succeeded++;
      if (inv.finishedAt !== null)
        delays.push(Date.parse(inv.finishedAt) - Date.parse(inv.acceptedAt));
    }
    const d = latencyPercentiles(delays);
    return {
      store,
      count,
      parallel,
      accepted_per_s: round((count / acceptedMs) * 1000, 0),
      completed_per_s: round((count / completedMs) * 1000, 0),
      succeeded,
      delay_p50_ms: d.p50_ms,
      delay_p99_ms: d.p99_ms,
      cpu_us_per_invocation: cpuUsPerUnit,
    };
  } finally {
    await cluster.stop();
    redis?.stop();
  }
}

const results = [await run('embedded'), await run('redis')];
printTable(
  `Asynchronous invocations: ${count} submitted, ${parallel} at a time (delay: acceptance to completion, ms; CPU µs per invocation)`,
  ['store', 'accepted/s', 'completed/s', 'succeeded', 'delay p50', 'delay p99', 'CP CPU', 'DP CPU'],
  results.map((r) => [
    r.store,
    r.accepted_per_s,
    r.completed_per_s,
    r.succeeded,
    r.delay_p50_ms,
    r.delay_p99_ms,
    r.cpu_us_per_invocation['control-plane'] ?? '-',
    r.cpu_us_per_invocation['data-plane'] ?? '-',
  ]),
);
writeResult(v.out, { benchmark: 'async', machine: machine(), results });

/**
 * More load than a small worker can take sandboxes for (`baton up`, process
 * runtime, its defaults): three `empty` functions at concurrency 1 and 150
 * requests/s each. The autoscaler wants a sandbox per queued request; the
 * worker must not be asked for more sandboxes than its capacity admits, must
 * keep sending heartbeats, and every daemon must survive. (Before admission
 * counted what a process sandbox costs, this made 270 sandboxes on a 2-core
 * worker, which was declared failed, and 322 of 4499 requests succeeded.)
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { startUp, type BatonUp } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { putFunction } from '../helpers/baton-client.js';
import type { SupervisedDaemon } from '../../src/shared/supervision.js';

const FUNCTIONS = ['busy-a', 'busy-b', 'busy-c'];
const RATE_PER_FUNCTION = 150;
const DURATION_MS = 10_000;
const CLIENT_TIMEOUT_MS = 5_000;

interface Status {
  workers: Array<{
    id: string;
    sandboxes: number;
    allocated: { cpuMilli: number; memoryMib: number };
    capacity: { cpuMilli: number; memoryMib: number };
    sandboxFloor: { cpuMilli: number; memoryMib: number };
  }>;
  supervised?: SupervisedDaemon[];
}

describe('a burst beyond what the worker has room for', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp([]);
  });
  after(() => b.stop());

  it('keeps the worker alive and under its capacity, and serves the load', async () => {
    for (const name of FUNCTIONS) {
      const put = await putFunction(b.registration, name, { image: 'empty', minScale: 1 });
      assert.equal(put.status, 201, put.text);
    }
    const status = async () =>
      JSON.parse((await httpRequest(`${b.registration}/v1/status`)).text) as Status;
    const worker = (await status()).workers[0]!;
    assert.ok(
      worker.sandboxFloor.memoryMib >= 128,
      'a process sandbox is charged its memory limit',
    );
    const maxSandboxes = Math.min(
      Math.floor(worker.capacity.cpuMilli / worker.sandboxFloor.cpuMilli),
      Math.floor(worker.capacity.memoryMib / worker.sandboxFloor.memoryMib),
    );

    const agent = new Agent({ connections: 256 });
    const outcomes = new Map<string, number>();
    const count = (k: string): void => {
      outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
    };
    const inflight: Array<Promise<void>> = [];
    let most = 0;
    const watch = setInterval(() => {
      void status().then(
        (s) => (most = Math.max(most, ...s.workers.map((w) => w.sandboxes))),
        () => undefined,
      );
    }, 250);
    const t0 = Date.now();
    const perMs = (RATE_PER_FUNCTION * FUNCTIONS.length) / 1000;
    let sent = 0;
    while (Date.now() - t0 < DURATION_MS) {
      const due = Math.floor((Date.now() - t0) * perMs);
      for (; sent < due; sent++) {
        const name = FUNCTIONS[sent % FUNCTIONS.length]!;
        inflight.push(
          request(`${b.proxy}/`, {
            headers: { host: name },
            dispatcher: agent,
            signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
          }).then(
            async (res) => {
              await res.body.text();
              count(String(res.statusCode));
            },
            (err: Error) => count(err.name),
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inflight);
    clearInterval(watch);
    await agent.close();

    const ok = outcomes.get('200') ?? 0;
    assert.ok(ok >= sent * 0.99, `${ok} of ${sent} succeeded: ${JSON.stringify([...outcomes])}`);
    assert.ok(most <= maxSandboxes, `${most} sandboxes on a worker with room for ${maxSandboxes}`);
    const after = await status();
    assert.equal(after.workers.length, 1, 'the worker was not declared failed');
    for (const d of after.supervised ?? []) assert.equal(d.restarts, 0, `${d.name} restarted`);
    assert.doesNotMatch(b.up.output(), /worker failed|no heartbeat/);
  });
});

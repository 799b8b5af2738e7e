/**
 * Revisions end to end through `baton up` (process runtime) and the CLI: a
 * changed spec rolled out under steady load fails no request; a 90/10 split
 * holds over 1000 requests; a rollback sends everything back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageDir, runBaton, startUp, type BatonUp } from '../helpers/processes.js';
import { invoke } from '../helpers/baton-client.js';

/** Sends requests, `concurrency` at a time, until `stop()` or `maxMs`; counts answers by body. */
function steadyLoad(proxy: string, name: string, concurrency: number, maxMs: number) {
  const bodies = new Map<string, number>();
  const failures: string[] = [];
  let stopped = false;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped && Date.now() < end) {
      const res = await invoke(proxy, name).catch((err: Error) => ({
        status: 0,
        text: err.message,
      }));
      if (res.status !== 200) failures.push(`${res.status} ${res.text.trim()}`);
      else bodies.set(res.text, (bodies.get(res.text) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
  return {
    bodies,
    failures,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function count(proxy: string, name: string, n: number): Promise<Map<string, number>> {
  const bodies = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        next++;
        const res = await invoke(proxy, name);
        assert.equal(res.status, 200, res.text);
        bodies.set(res.text, (bodies.get(res.text) ?? 0) + 1);
      }
    }),
  );
  return bodies;
}

describe('revisions', () => {
  let b: BatonUp;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    b = await startUp();
    env = { BATON_CP: b.registration, BATON_DP: b.proxy };
    dir = imageDir('baton-rev-');
    writeFileSync(join(dir, 'index.mjs'), 'export default () => new Response(process.env.REV);\n');
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rolls a changed spec out under steady load with no failed request', async () => {
    const deploy = (rev: string) =>
      runBaton(['deploy', 'rev-fn', '--image', dir, '--env', `REV=${rev}`], env);
    assert.equal((await deploy('1')).code, 0);
    assert.equal((await invoke(b.proxy, 'rev-fn')).text, '1');
    const load = steadyLoad(b.proxy, 'rev-fn', 4, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    const update = await deploy('2');
    assert.equal(update.code, 0, update.stderr);
    assert.match(update.stdout, /^rolled out rev-fn revision 2 /);
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();
    assert.deepEqual(load.failures, [], 'failed requests during the rollout');
    assert.ok(
      (load.bodies.get('1') ?? 0) > 0 && (load.bodies.get('2') ?? 0) > 0,
      [...load.bodies].join(' '),
    );
    assert.equal((await invoke(b.proxy, 'rev-fn')).text, '2', 'all traffic on revision 2');
    const unchanged = await deploy('2');
    assert.match(unchanged.stdout, /^rev-fn is unchanged \(revision 2\)/);
  });

  it('holds a 90/10 split over 1000 requests, and rolls back', async () => {
    const split = await runBaton(['traffic', 'rev-fn', '1=90', '2=10'], env);
    assert.equal(split.code, 0, split.stderr);
    assert.equal(split.stdout, 'rev-fn: revision 1 90%, revision 2 10%\n');
    const bodies = await count(b.proxy, 'rev-fn', 1000);
    const share = (bodies.get('1') ?? 0) / 1000;
    assert.ok(Math.abs(share - 0.9) <= 0.03, `revision 1 took ${share * 100}%`);
    const described = await runBaton(['describe', 'rev-fn'], env);
    assert.match(described.stdout, /\nrevisions:\s+1 \(90%\), 2 \(10%\); shown: revision 1/);
    assert.match((await runBaton(['describe', 'rev-fn@2'], env)).stdout, /^name:\s+rev-fn@2\n/);
    const list = await runBaton(['revisions', 'rev-fn'], env);
    assert.match(
      list.stdout,
      /^REVISION\s+TRAFFIC\s+SANDBOXES\s+IMAGE\n1\s+90%\s+\d+\s+\S+\n2\s+10%/,
    );
    const back = await runBaton(['rollback', 'rev-fn'], env);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, 'rev-fn: all traffic to revision 1\n');
    assert.deepEqual([...(await count(b.proxy, 'rev-fn', 50))], [['1', 50]]);
    const bad = await runBaton(['traffic', 'rev-fn', '1=50', '2=40'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /split: weights must sum to 100/);
    assert.equal((await runBaton(['rm', 'rev-fn'], env)).code, 0);
    const gone = await runBaton(['revisions', 'rev-fn'], env);
    assert.equal(gone.code, 1);
  });
});

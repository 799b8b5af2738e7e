/**
 * Asynchronous invocations end to end through `baton up` and the CLI: 202
 * with an id once durable, the result by id, retries by the function's
 * policy, the dead-letter list, and nothing lost when the data plane, a
 * worker and the control plane are SIGKILLed while invocations run.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { imageDir, runBaton, startUp, type BatonUp } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { putFunction, waitUntil } from '../helpers/baton-client.js';
import type { ClusterStatus } from '../../src/shared/http-api.js';

const MODULES = {
  echo: 'export default async (req) => new Response("got " + (await req.text()));\n',
  // Fails its first two POSTs (per sandbox; a readiness probe is not one), then answers.
  flaky:
    'let n = 0;\nexport default (req) => (req.method === "POST" && ++n <= 2 ? new Response("not yet", { status: 500 }) : new Response("at last"));\n',
  broken: 'export default () => new Response("broken", { status: 503 });\n',
  slow: 'export default async () => { await new Promise((r) => setTimeout(r, 50)); return new Response("slow ok"); };\n',
};

describe('asynchronous invocations', () => {
  let b: BatonUp;
  let env: Record<string, string>;
  let dir: string;
  const status = async () =>
    JSON.parse((await httpRequest(`${b.registration}/v1/status`)).text) as ClusterStatus;
  const invocation = async (id: string) =>
    JSON.parse((await httpRequest(`${b.registration}/v1/invocations/${id}`)).text) as {
      state: string;
      attempts: number;
      bodyBase64: string | null;
      error: string | null;
    };
  const submit = async (name: string, body = '') => {
    const res = await httpRequest(`${b.proxy}/`, {
      method: 'POST',
      headers: { host: name, 'x-baton-async': '1' },
      body,
    });
    assert.equal(res.status, 202, res.text);
    const { id } = JSON.parse(res.text) as { id: string };
    assert.equal(res.headers.location, `/v1/invocations/${id}`);
    return id;
  };
  const final = (id: string, timeoutMs = 60_000) =>
    waitUntil(
      `invocation ${id} final`,
      async () => !['queued', 'running'].includes((await invocation(id)).state),
      timeoutMs,
    );

  before(async () => {
    b = await startUp(['--workers', '2']);
    env = { BATON_CP: b.registration, BATON_DP: b.proxy };
    dir = imageDir('baton-async-');
    for (const [name, code] of Object.entries(MODULES)) {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'index.mjs'), code);
      const spec = {
        image: join(dir, name),
        asyncAttempts: 3,
        asyncBackoffMs: 50,
        concurrency: 100,
      };
      assert.equal((await putFunction(b.registration, `async-${name}`, spec)).status, 201);
    }
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 202 with an id, runs it, and keeps its result; the CLI does the same', async () => {
    const inv = await runBaton(['invoke', 'async-echo', '--async', '-d', 'hello'], env);
    assert.equal(inv.code, 0, inv.stderr);
    const id = inv.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const result = await runBaton(['result', id, '--wait'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'got hello');
    assert.match(result.stderr, /succeeded after 1 attempt\(s\), HTTP 200/);
    // The 202's Location, on the data plane that answered it.
    const there = await httpRequest(`${b.proxy}/v1/invocations/${id}`);
    assert.equal(there.status, 200, there.text);
    assert.equal((JSON.parse(there.text) as { state: string }).state, 'succeeded');
    assert.equal((await httpRequest(`${b.proxy}/v1/invocations/nope`)).status, 404);
    const unknown = await httpRequest(`${b.proxy}/`, {
      headers: { host: 'nope', 'x-baton-async': '1' },
    });
    assert.equal(unknown.status, 404);
  });

  it("speaks Dirigent's async form too: 200 with the id, then its answer from the read side", async () => {
    const res = await httpRequest(`${b.proxy}/`, {
      method: 'POST',
      headers: { host: 'async-echo', 'x-baton-invocation': 'async' },
      body: 'dirigent',
    });
    assert.equal(res.status, 200, res.text);
    const id = res.text;
    assert.match(id, /^[0-9a-f-]{36}$/);
    const read = (await status()).dataPlanes[0]!.asyncRead;
    assert.ok(read, 'the data plane names its async read side');
    let answer = await httpRequest(`http://${read}/`, { method: 'POST', body: id });
    for (let i = 0; i < 100 && answer.status === 204; i++) {
      await new Promise((r) => setTimeout(r, 50));
      answer = await httpRequest(`http://${read}/`, { method: 'POST', body: id });
    }
    assert.equal(answer.status, 200);
    assert.equal(answer.text, 'got dirigent');
  });

  it('retries a handler that fails twice, and dead-letters one that always fails', async () => {
    const flaky = await submit('async-flaky');
    await final(flaky);
    const ok = await invocation(flaky);
    assert.equal(ok.state, 'succeeded');
    assert.equal(ok.attempts, 3);
    assert.equal(Buffer.from(ok.bodyBase64!, 'base64').toString(), 'at last');

    const broken = await submit('async-broken');
    await final(broken);
    const dead = await invocation(broken);
    assert.equal(dead.state, 'dead-lettered');
    assert.equal(dead.attempts, 3);
    assert.match(dead.error ?? '', /the function answered 503/);
    const ls = await runBaton(['dlq', 'ls'], env);
    assert.match(ls.stdout, new RegExp(`^${broken}\\s+async-broken\\s+3\\s`, 'm'));
    assert.equal((await runBaton(['dlq', 'retry', broken], env)).code, 0);
    await final(broken);
    assert.equal((await invocation(broken)).state, 'dead-lettered');
    assert.equal((await runBaton(['dlq', 'rm', broken], env)).code, 0);
    assert.equal((await httpRequest(`${b.registration}/v1/invocations/${broken}`)).status, 404);
  });

  it('loses none of 1000 when the data plane, a worker and the control plane are SIGKILLed', async () => {
    const pidOf = async (name: string) => {
      const d = (await status()).supervised?.find((s) => s.name === name);
      assert.ok(d?.pid, `${name} is supervised`);
      return d.pid;
    };
    const ids: string[] = [];
    let next = 0;
    const send = async () => {
      while (next < 1000) {
        next++;
        // A data plane or control plane on its way back refuses for a moment: the client retries.
        for (let tries = 0; ; tries++) {
          const res = await httpRequest(`${b.proxy}/`, {
            method: 'POST',
            headers: { host: 'async-slow', 'x-baton-async': '1' },
            body: 'x',
          }).catch(() => undefined);
          if (res?.status === 202) {
            ids.push((JSON.parse(res.text) as { id: string }).id);
            break;
          }
          assert.ok(tries < 200, `not accepted: ${res?.status} ${res?.text}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const senders = Array.from({ length: 8 }, send);
    await waitUntil('200 accepted', () => Promise.resolve(ids.length >= 200), 60_000, 20);
    process.kill(await pidOf('data-plane'), 'SIGKILL');
    await waitUntil('500 accepted', () => Promise.resolve(ids.length >= 500), 60_000, 20);
    process.kill(await pidOf('worker-1'), 'SIGKILL');
    await waitUntil('700 accepted', () => Promise.resolve(ids.length >= 700), 60_000, 20);
    process.kill(await pidOf('control-plane'), 'SIGKILL');
    await Promise.all(senders);
    assert.equal(new Set(ids).size, 1000);
    const states = new Map<string, number>();
    await waitUntil(
      'every invocation final',
      async () => {
        states.clear();
        for (const id of ids) {
          const res = await httpRequest(`${b.registration}/v1/invocations/${id}`).catch(
            () => undefined,
          );
          const s =
            res?.status === 200
              ? (JSON.parse(res.text) as { state: string }).state
              : `http ${res?.status}`;
          states.set(s, (states.get(s) ?? 0) + 1);
        }
        return (states.get('succeeded') ?? 0) + (states.get('dead-lettered') ?? 0) === 1000;
      },
      120_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${[...states].join(' ')}`);
    });
  });
});

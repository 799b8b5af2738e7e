/**
 * End to end against `baton up` (real control plane, data plane and two
 * workers with process sandboxes), on ephemeral ports.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { startUp, isAlive, pidsListeningOn, type BatonUp, imageDir } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { writeTypedModules } from '../helpers/specs.js';
import { detectCgroups } from '../../src/worker/runtimes/process/isolation/cgroups.js';
import {
  dirigentFields,
  getFunction,
  invoke,
  invokeH2,
  registerForm,
  waitUntil,
  putFunction,
} from '../helpers/baton-client.js';

describe('baton up: the request path end to end', () => {
  let b: BatonUp;
  let fixtures: string;
  before(async () => {
    b = await startUp(['--workers', '2']);
    fixtures = imageDir('baton-fixtures-');
  });
  after(async () => {
    await b.stop();
    rmSync(fixtures, { recursive: true, force: true });
  });

  it('registers through the Dirigent form and answers where to invoke', async () => {
    const res = await registerForm(b.registration, dirigentFields('reg-ok'));
    assert.equal(res.status, 200);
    assert.equal(res.text, new URL(b.proxy).host);
    const again = await registerForm(b.registration, dirigentFields('reg-ok'));
    assert.equal(again.status, 200, 'an identical re-registration is idempotent');
    assert.equal(again.text, res.text);
    const changed = await registerForm(b.registration, dirigentFields('reg-ok', 'empty'));
    assert.equal(changed.status, 409);
    assert.match(changed.text, /exists with a different spec/);
  });

  it('rejects bad registrations with 400 and a one-line reason', async () => {
    const cases: Array<[Record<string, string | string[]>, RegExp]> = [
      [{ image: 'trace', port_forwarding: ['80', 'tcp'] }, /^name: is required/],
      [{ name: 'x', port_forwarding: ['80', 'tcp'] }, /^image: is required/],
      [{ name: 'x', image: 'trace' }, /^port_forwarding: is required/],
      [
        { name: 'x', image: 'trace', port_forwarding: ['eighty', 'tcp'] },
        /^port_forwarding: "eighty" is not an integer/,
      ],
      [{ name: 'x', image: 'trace', port_forwarding: ['70000', 'tcp'] }, /^port_forwarding:/],
      [
        { name: 'x', image: 'trace', port_forwarding: ['80', 'sctp'] },
        /protocol "sctp" must be tcp or udp/,
      ],
      [
        { name: 'Bad Name', image: 'trace', port_forwarding: ['80', 'tcp'] },
        /^name: must be lowercase/,
      ],
      [dirigentFields('x', 'trace', { requested_cpu: '-5' }), /^requested_cpu:/],
      [
        dirigentFields('x', 'trace', { scaling_upper_bound: '0' }),
        /^scaling_upper_bound: 0 must be at least 1/,
      ],
      [
        dirigentFields('x', 'trace', { scaling_lower_bound: '5', scaling_upper_bound: '2' }),
        /^scaling_lower_bound \(5\) must not exceed scaling_upper_bound \(2\)/,
      ],
      [
        dirigentFields('x', 'trace', { cold_start_sweep: 'maybe' }),
        /^cold_start_sweep: "maybe" is not true or false/,
      ],
      [
        dirigentFields('x', 'trace', { env_vars: 'NOVALUE' }),
        /^env_vars: "NOVALUE" is not NAME=VALUE/,
      ],
    ];
    for (const [fields, reason] of cases) {
      const res = await registerForm(b.registration, fields);
      assert.equal(res.status, 400, `${JSON.stringify(fields)} -> ${res.status} ${res.text}`);
      assert.match(res.text, reason);
      assert.equal(res.text.trim().split('\n').length, 1, 'one line');
    }
    const get = await httpRequest(`${b.registration}/registerService`);
    assert.equal(get.status, 405);
    // Unknown fields are ignored, as Dirigent does.
    const extra = await registerForm(
      b.registration,
      dirigentFields('reg-extra', 'trace', {
        prepull_mode: 'none',
        requested_gpu: '0',
        whatever: '1',
      }),
    );
    assert.equal(extra.status, 200);
    // Sized, not chunked: the answer leaves in one write (docs/ARCHITECTURE.md, control plane).
    assert.equal(extra.headers['content-length'], String(Buffer.byteLength(extra.text)));
    assert.equal(extra.headers['transfer-encoding'], undefined);
    // Fields in the query string and the body together, the query's first; and
    // the absolute form of the request target (RFC 9112 §3.2.2), written raw.
    const split = await rawHttp(
      b.registration,
      `POST ${b.registration}/registerService?name=reg-split&image=trace HTTP/1.1`,
      'port_forwarding=80&port_forwarding=tcp&name=ignored&scaling_lower_bound=0',
    );
    assert.match(split, /^HTTP\/1\.1 200 /);
    assert.equal((await getFunction(b.registration, 'reg-split'))?.sandboxes, 0);
  });

  it('runs the first invocation cold and the second warm, over HTTP/1.1', async () => {
    assert.equal((await registerForm(b.registration, dirigentFields('cold-warm'))).status, 200);
    assert.equal((await getFunction(b.registration, 'cold-warm'))?.sandboxes, 0);
    const headers = {
      workload: 'trace',
      function: 'cold-warm',
      requested_cpu: '10',
      requested_memory: '1',
      multiplier: '0',
    };
    const first = await invoke(b.proxy, 'cold-warm', headers);
    assert.equal(first.status, 200, first.text);
    const body = JSON.parse(first.text) as {
      Status: string;
      Function: string;
      ExecutionTime: number;
    };
    assert.equal(body.Status, 'OK');
    assert.equal(body.Function, 'cold-warm');
    assert.ok(body.ExecutionTime >= 10_000);
    assert.equal(first.headers['x-baton-start'], 'cold', 'the data plane says it waited');
    assert.ok(Number(first.headers['x-baton-queued-ms']) > 0);
    const afterCold = await getFunction(b.registration, 'cold-warm');
    assert.equal(afterCold?.sandboxesCreated, 1, 'the first invocation created a sandbox');
    const second = await invoke(b.proxy, 'cold-warm', headers);
    assert.equal(second.status, 200);
    assert.equal(second.headers['x-baton-start'], 'warm');
    assert.equal(second.headers['x-baton-queued-ms'], undefined);
    const afterWarm = await getFunction(b.registration, 'cold-warm');
    assert.equal(afterWarm?.sandboxesCreated, 1, 'the second invocation reused it');
    assert.equal(afterWarm?.sandboxes, 1);
    assert.match(afterWarm?.sandboxList[0]?.address ?? '', /^127\.0\.0\.1:\d+$/);
  });

  it('runs cold then warm over h2c with prior knowledge', async () => {
    assert.equal(
      (await registerForm(b.registration, dirigentFields('h2-fn', 'empty'))).status,
      200,
    );
    const first = await invokeH2(b.proxy, 'h2-fn', { workload: 'empty' });
    assert.equal(first.status, 200);
    assert.match(first.text, /"Status":"OK - EMPTY"/);
    assert.equal(first.headers['x-baton-start'], 'cold');
    const second = await invokeH2(b.proxy, 'h2-fn', { workload: 'empty' });
    assert.equal(second.status, 200);
    assert.equal((await getFunction(b.registration, 'h2-fn'))?.sandboxesCreated, 1);
  });

  it('answers an unknown function with 404 and a reason, routes /function/NAME/, and never 404s a registered one', async () => {
    const res = await invoke(b.proxy, 'no-such-function');
    assert.equal(res.status, 404);
    assert.equal(res.text, 'function "no-such-function" is not registered\n');
    const h2 = await invokeH2(b.proxy, 'no-such-function');
    assert.equal(h2.status, 404);
    assert.equal(
      (await registerForm(b.registration, dirigentFields('by-path', 'hello'))).status,
      200,
    );
    const byPath = await httpRequest(`${b.proxy}/function/by-path/some/path?q=1`);
    assert.equal(byPath.status, 200);
    assert.match(byPath.text, /^Hello from by-path/);
    assert.equal((await httpRequest(`${b.proxy}/function/nope/`)).status, 404);
    // The data plane remembers a 404 for a second; a registration within it is not one.
    assert.equal((await invoke(b.proxy, 'late-one')).status, 404);
    assert.equal(
      (await registerForm(b.registration, dirigentFields('late-one', 'hello'))).status,
      200,
    );
    const late = await invoke(b.proxy, 'late-one');
    assert.equal(late.status, 200, late.text);
  });

  it("serves Dirigent's JSON /metrics on the data plane", async () => {
    const all = await httpRequest(`${b.proxy}/metrics`);
    assert.equal(all.status, 200);
    const m = JSON.parse(all.text) as Record<string, number>;
    assert.deepEqual(Object.keys(m).sort(), ['Inflight', 'QueueDepth', 'SuccessfulInvocations']);
    assert.ok(m.SuccessfulInvocations! >= 1);
    const one = JSON.parse(
      (await httpRequest(`${b.proxy}/metrics?service=cold-warm`)).text,
    ) as Record<string, number>;
    assert.equal(one.SuccessfulInvocations, 2);
    const unknown = await httpRequest(`${b.proxy}/metrics?service=nope`);
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /unknown service "nope"/);
    assert.equal((await httpRequest(`${b.proxy}/health`)).status, 200);
    assert.equal((await httpRequest(`${b.registration}/health`)).status, 200);
  });

  it('serves 50 concurrent first invocations of 50 different functions', async () => {
    const names = Array.from({ length: 50 }, (_, i) => `burst-${i}`);
    await Promise.all(
      names.map(async (n) =>
        assert.equal((await registerForm(b.registration, dirigentFields(n, 'empty'))).status, 200),
      ),
    );
    const results = await Promise.all(
      names.map((n) => invoke(b.proxy, n, { workload: 'empty', function: n })),
    );
    const failed = results
      .map((r, i) => [names[i], r.status, r.text] as const)
      .filter(([, s]) => s !== 200);
    assert.deepEqual(failed, []);
    for (const r of results) assert.match(r.text, /OK - EMPTY/);
  });

  it('drains in-flight requests before deleting a function', async () => {
    assert.equal((await registerForm(b.registration, dirigentFields('drain-me'))).status, 200);
    const headers = { workload: 'trace', requested_cpu: '5', requested_memory: '1' };
    assert.equal((await invoke(b.proxy, 'drain-me', headers)).status, 200); // warm it up
    const long = invoke(b.proxy, 'drain-me', { ...headers, requested_cpu: '1500' });
    await waitUntil('the long request to be in flight', async () => {
      const m = JSON.parse((await httpRequest(`${b.proxy}/metrics?service=drain-me`)).text) as {
        Inflight: number;
      };
      return m.Inflight === 1;
    });
    const t0 = Date.now();
    const del = await httpRequest(`${b.registration}/v1/functions/drain-me`, { method: 'DELETE' });
    const deleteMs = Date.now() - t0;
    assert.equal(del.status, 200, del.text);
    assert.deepEqual(JSON.parse(del.text), { deleted: 'drain-me', drained: true, remaining: 0 });
    const done = await long;
    assert.equal(done.status, 200, 'the in-flight request finished');
    assert.ok(
      deleteMs >= 500,
      `delete returned after ${deleteMs} ms, before the request could finish`,
    );
    assert.equal((await invoke(b.proxy, 'drain-me', headers)).status, 404);
    assert.equal(await getFunction(b.registration, 'drain-me'), undefined);
  });

  it('recovers when a sandbox process is killed under traffic', async () => {
    assert.equal(
      (await registerForm(b.registration, dirigentFields('victim', 'hello'))).status,
      200,
    );
    const first = await invoke(b.proxy, 'victim');
    const firstId = /sandbox (\S+) on/.exec(first.text)?.[1] ?? '';
    const address = (await getFunction(b.registration, 'victim'))!.sandboxList[0]!.address ?? '';
    const pids = pidsListeningOn(Number(address.split(':').at(-1)));
    assert.ok(pids.length > 0 && pids.every(isAlive), `processes serving ${address}`);
    let stop = false;
    const statuses: number[] = [];
    const traffic = (async () => {
      const end = Date.now() + 15_000;
      for (let i = 0; i < 2000 && !stop && Date.now() < end; i++) {
        statuses.push((await invoke(b.proxy, 'victim').catch(() => ({ status: 0 }))).status);
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    for (const pid of pids) process.kill(pid, 'SIGKILL');
    await waitUntil('a new sandbox to serve', async () => {
      const r = await invoke(b.proxy, 'victim').catch(() => undefined);
      const id = /sandbox (\S+) on/.exec(r?.text ?? '')?.[1];
      return r?.status === 200 && id !== undefined && id !== firstId;
    });
    // Once a new sandbox serves, everything sent afterwards must succeed.
    const recoveredAt = statuses.length + 1; // skip a request that may have been in flight
    await waitUntil('more traffic after recovery', () =>
      Promise.resolve(statuses.length >= recoveredAt + 20),
    );
    stop = true;
    await traffic;
    assert.ok(statuses.filter((s) => s === 200).length > 20, 'traffic flowed');
    const after = statuses.slice(recoveredAt);
    assert.deepEqual(
      after.filter((s) => s !== 200),
      [],
      `after recovery: ${after.join(',')}`,
    );
    // Replaced, not leaked: two clients (the traffic and the probe above) may
    // have queued at once behind the dead sandbox, which panic scaling answers
    // with a second sandbox.
    const info = await getFunction(b.registration, 'victim');
    assert.ok(
      info !== undefined && info.sandboxes >= 1 && info.sandboxes <= 2,
      `${info?.sandboxes} sandboxes`,
    );
  });

  it('answers 503 with a reason when no sandbox is ready within the cold-start timeout', async () => {
    writeFileSync(
      join(fixtures, 'slow.mjs'),
      'await new Promise((r) => setTimeout(r, 4000));\nexport default () => new Response("late");\n',
    );
    const res = await putFunction(b.registration, 'slow-start', {
      image: join(fixtures, 'slow.mjs'),
      coldStartTimeoutMs: 500,
    });
    assert.equal(res.status, 201, res.text);
    const t0 = Date.now();
    const inv = await invoke(b.proxy, 'slow-start');
    assert.equal(inv.status, 503);
    assert.match(inv.text, /no sandbox of "slow-start" became ready within 500 ms/);
    assert.ok(Date.now() - t0 < 3000);
  });

  it('refuses a missing image at registration, and answers 502 at once for one that fails at start', async () => {
    const missing = await putFunction(b.registration, 'bad-image', {
      image: '/nonexistent/function/dir',
    });
    assert.equal(missing.status, 400, missing.text);
    assert.match(missing.text, /image: image path \/nonexistent\/function\/dir does not exist/);
    assert.equal(await getFunction(b.registration, 'bad-image'), undefined, 'nothing registered');
    // It compiles, so registration takes it; it throws as it loads.
    writeFileSync(join(fixtures, 'throws.mjs'), 'throw new Error("broken at load");\n');
    const res = await putFunction(b.registration, 'bad-image', {
      image: join(fixtures, 'throws.mjs'),
    });
    assert.equal(res.status, 201, res.text);
    const inv = await invoke(b.proxy, 'bad-image');
    assert.equal(inv.status, 502);
    assert.match(inv.text, /broken at load/);
    const info = await getFunction(b.registration, 'bad-image');
    assert.match(JSON.stringify(info), /broken at load/);
  });

  it('loads TypeScript modules with types from a directory outside Baton, the example unchanged', async () => {
    // Outside any "type": "module" package: Node would take them for CommonJS.
    const images = writeTypedModules(fixtures);
    assert.equal((await putFunction(b.registration, 'typed', { image: images.typed })).status, 201);
    const typed = await httpRequest(`${b.proxy}/x`, { headers: { host: 'typed' } });
    assert.equal(typed.status, 200, typed.text);
    assert.equal(typed.text, 'typed /x');
    assert.equal(
      (await putFunction(b.registration, 'hello-ts-copy', { image: images.helloTs })).status,
      201,
    );
    const hello = await httpRequest(`${b.proxy}/?name=Ada`, { headers: { host: 'hello-ts-copy' } });
    assert.equal(hello.status, 200, hello.text);
    assert.equal((JSON.parse(hello.text) as { greeting: string }).greeting, 'Hello, Ada!');
  });

  it('runs a user JS module handler and passes requests through unchanged', async () => {
    writeFileSync(
      join(fixtures, 'echo.mjs'),
      'export default async (req) => new Response(JSON.stringify({ method: req.method, url: req.url, x: req.headers.get("x-test"), body: await req.text() }), { status: 201, headers: { "x-fn": "echo", "x-baton-start": "cold" } });\n',
    );
    const put = await putFunction(b.registration, 'echo', { image: join(fixtures, 'echo.mjs') });
    assert.equal(put.status, 201);
    const res = await httpRequest(`${b.proxy}/a/b?c=d`, {
      method: 'POST',
      headers: { host: 'echo', 'x-test': 'yes' },
      body: 'payload',
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers['x-fn'], 'echo');
    assert.deepEqual(JSON.parse(res.text), {
      method: 'POST',
      url: 'http://echo/a/b?c=d',
      x: 'yes',
      body: 'payload',
    });
    // Only runtimes that make an isolate for a request may say `cold` (Endpoint.reportsColdStart).
    const again = await httpRequest(`${b.proxy}/`, { headers: { host: 'echo' } });
    assert.equal(
      again.headers['x-baton-start'],
      'warm',
      "the handler's own label is not passed on",
    );
  });

  it("stops a handler that runs past the function's time-out and replaces its sandbox", async () => {
    writeFileSync(
      join(fixtures, 'loop.mjs'),
      'export default (req) => { if (new URL(req.url).pathname === "/loop") for (;;) {} return new Response("fine"); };\n',
    );
    const put = await putFunction(b.registration, 'looper', {
      image: join(fixtures, 'loop.mjs'),
      timeoutMs: 1000,
    });
    assert.equal(put.status, 201, put.text);
    assert.equal((await invoke(b.proxy, 'looper')).status, 200);
    const before = await getFunction(b.registration, 'looper');
    const address = before!.sandboxList[0]!.address!;
    const [pid] = pidsListeningOn(Number(address.split(':').at(-1)));
    assert.ok(pid !== undefined, 'the sandbox process is found');
    const res = await invoke(b.proxy, 'looper', {}, '/loop');
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-baton-error'], 'BATON_ERR_TIMEOUT');
    await waitUntil('the burning sandbox to be stopped', () => Promise.resolve(!isAlive(pid)));
    const again = await invoke(b.proxy, 'looper');
    assert.equal(again.status, 200, 'a replacement serves');
    const info = await getFunction(b.registration, 'looper');
    assert.equal(info!.lastFailure!.code, 'BATON_ERR_TIMEOUT');
    assert.match(info!.lastFailure!.message, /execution time-out of 1000 ms/);
  });

  it('tells the client and lastFailure how a sandbox killed for its memory ended', async (t) => {
    const cgroups = detectCgroups(`baton-probe-${process.pid}`);
    if (typeof cgroups === 'string') return t.skip(`no memory limits here: ${cgroups}`);
    await cgroups.close();
    writeFileSync(
      join(fixtures, 'hog.mjs'),
      'export default (req) => { if (new URL(req.url).pathname === "/hog") { const keep = []; for (;;) keep.push(Buffer.alloc(8 << 20, 1)); } return new Response("fine"); };\n',
    );
    const put = await putFunction(b.registration, 'hog', {
      image: join(fixtures, 'hog.mjs'),
      memoryMib: 128,
    });
    assert.equal(put.status, 201, put.text);
    const res = await invoke(b.proxy, 'hog', {}, '/hog');
    assert.equal(res.status, 502);
    assert.equal(res.headers['x-baton-error'], 'BATON_ERR_SANDBOX_EXITED');
    assert.match(res.text, /killed by the OOM killer: over its memory limit of 128 MiB/);
    const info = await getFunction(b.registration, 'hog');
    assert.equal(info!.lastFailure!.code, 'BATON_ERR_SANDBOX_EXITED');
    assert.match(info!.lastFailure!.message, /OOM killer/);
  });

  it('serves the JSON API with clear errors', async () => {
    const bad = await httpRequest(`${b.registration}/v1/functions/json-fn`, {
      method: 'PUT',
      body: '{not json',
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(JSON.parse(bad.text), {
      code: 'BATON_ERR_INVALID_ARGUMENT',
      message: 'body is not JSON',
    });
    const unknownField = await putFunction(b.registration, 'json-fn', {
      image: 'hello',
      colour: 'red',
    });
    assert.equal(unknownField.status, 400);
    assert.match(unknownField.text, /unknown field\(s\) colour/);
    const ok = await putFunction(b.registration, 'json-fn', { image: 'hello', maxScale: 2 });
    assert.equal(ok.status, 201);
    const same = await putFunction(b.registration, 'json-fn', { image: 'hello', maxScale: 2 });
    assert.equal(same.status, 200);
    const list = JSON.parse((await httpRequest(`${b.registration}/v1/functions`)).text) as {
      functions: Array<{ spec: { name: string } }>;
    };
    assert.ok(list.functions.some((f) => f.spec.name === 'json-fn'));
    assert.equal((await httpRequest(`${b.registration}/v1/functions/nope`)).status, 404);
    assert.equal(
      (await httpRequest(`${b.registration}/v1/functions/nope`, { method: 'DELETE' })).status,
      404,
    );
    assert.equal((await httpRequest(`${b.registration}/v1/nothing`)).status, 404);
    const status = JSON.parse((await httpRequest(`${b.registration}/v1/status`)).text) as {
      workers: unknown[];
      dataPlanes: unknown[];
    };
    assert.equal(status.workers.length, 2);
    assert.equal(status.dataPlanes.length, 1);
  });
});

/** One request written as is on a fresh connection (`line` is the request line); the whole answer. */
function rawHttp(base: string, line: string, form: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    // Not ended: a half-closed connection has its request dropped (Node's server).
    socket.write(
      `${line}\r\nhost: ${hostname}:${port}\r\ncontent-type: application/x-www-form-urlencoded\r\n` +
        `content-length: ${Buffer.byteLength(form)}\r\nconnection: close\r\n\r\n${form}`,
    );
  });
}

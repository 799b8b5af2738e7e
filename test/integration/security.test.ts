/**
 * What a stranger and a hostile function can do to a cluster that `baton
 * up` runs: every daemon's internal RPC refuses calls without the cluster
 * token; a process sandbox runs as a user of its own and every escape it
 * tries is refused; the cluster keeps serving as if nothing had been tried.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { imageDir, runBaton, startUp, type BatonUp } from '../helpers/processes.js';
import { detectBubblewrap } from '../../src/worker/runtimes/process/isolation/bubblewrap.js';
import { httpRequest } from '../helpers/http.js';
import { rawRpcCall } from '../helpers/raw-rpc.js';
import { getFunction, invoke, putFunction } from '../helpers/baton-client.js';
import { controlPlaneService } from '../../src/rpc/contracts/control-plane.js';
import { dataPlaneService } from '../../src/rpc/contracts/data-plane.js';
import { workerService } from '../../src/rpc/contracts/worker.js';
import type { ServiceContract } from '../../src/rpc/contract.js';
import type { ClusterStatus } from '../../src/shared/http-api.js';
import { isolatesUnsupported } from '../helpers/isolates.js';

/** A POST to `address` `path` over HTTP/2 without credentials: its status and error code. */
describe('a stranger on the network', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp(['--workers', '2', '--runtime', 'simulated']);
  });
  after(async () => {
    await b.stop();
  });

  it('keeps the cluster token in a file that only its owner can read', () => {
    assert.equal(statSync(join(b.dataDir, 'cluster-token')).mode & 0o777, 0o600);
  });

  it('is refused with 401 by every internal RPC method of every daemon, and changes nothing', async () => {
    assert.equal((await putFunction(b.registration, 'guarded', { image: 'empty' })).status, 201);
    assert.equal((await invoke(b.proxy, 'guarded')).status, 200);
    const status = JSON.parse(
      (await httpRequest(`${b.registration}/v1/status`)).text,
    ) as ClusterStatus;
    const cpRpc = String((b.up.ready.addresses as { cpRpc: string }).cpRpc).split(',')[0]!;
    const targets: Array<[string, string, ServiceContract]> = [
      ['control plane', cpRpc, controlPlaneService],
      ['data plane', status.dataPlanes[0]!.rpc, dataPlaneService],
      ['worker', status.workers[0]!.address, workerService],
    ];
    const before = await getFunction(b.registration, 'guarded');
    for (const [who, address, contract] of targets) {
      for (const method of Object.keys(contract.methods)) {
        // What a rogue caller would send: a real-looking request for each method.
        const res = await rawRpcCall(address, `/${contract.service}/${method}`, {
          workerId: status.workers[0]!.id,
          sandboxes: [],
          ids: [],
        });
        assert.equal(res, 'BATON_ERR_UNAUTHENTICATED', `${who} ${contract.service}/${method}`);
      }
    }
    const after = JSON.parse(
      (await httpRequest(`${b.registration}/v1/status`)).text,
    ) as ClusterStatus;
    assert.deepEqual(
      after.workers.map((w) => w.id).sort(),
      status.workers.map((w) => w.id).sort(),
      'no worker was deregistered',
    );
    assert.deepEqual(
      (await getFunction(b.registration, 'guarded'))?.sandboxList.map((s) => s.id),
      before?.sandboxList.map((s) => s.id),
    );
    assert.equal((await invoke(b.proxy, 'guarded')).status, 200);
  });
});

/**
 * A function that tries each escape and answers what happened to each: the
 * error code that stopped it, or "done" where nothing did.
 */
const HOSTILE = `
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
const e = process.env;
const attempt = (f) => { try { f(); return 'done'; } catch (err) { return err.code ?? String(err); } };
const rpc = () => new Promise((resolve) => {
  const [host, port] = e.WORKER_RPC.split(':');
  const s = connect(Number(port), host);
  s.on('error', (err) => resolve(err.code ?? 'error'));
  let text = '';
  s.setEncoding('utf8');
  s.on('data', (c) => {
    text += c;
    if (!text.includes('\\n')) return;
    s.destroy();
    const frame = JSON.parse(text.split('\\n')[0]);
    resolve(frame.error === undefined ? 'done' : frame.error.code);
  });
  s.write(JSON.stringify({ id: 1, path: '/worker/createSandboxes', body: { sandboxes: [] } }) + '\\n');
});
const api = () =>
  fetch('http://' + e.CP_API + '/v1/functions/sneaky', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ image: 'hello' }),
  }).then((r) => (r.ok ? 'done' : 'status ' + r.status), (err) => err.cause?.code ?? String(err));
export default async () => Response.json({
  uid: process.getuid(),
  readShadow: attempt(() => readFileSync('/etc/shadow')),
  readClusterToken: attempt(() => readFileSync(e.DATA_DIR + '/cluster-token')),
  readOtherFunction: attempt(() => readFileSync(e.OTHER_FUNCTION)),
  writeDataDir: attempt(() => writeFileSync(e.DATA_DIR + '/pwned', 'x')),
  writeBaton: attempt(() => writeFileSync(e.BATON_DIST + '/pwned.js', 'x')),
  writeOutsideTmp: attempt(() => writeFileSync('/var/tmp/baton-pwned', 'x')),
  joinRootCgroup: attempt(() => appendFileSync('/sys/fs/cgroup/cgroup.procs', String(process.pid))),
  signalControlPlane: attempt(() => process.kill(Number(e.CP_PID), 0)),
  callWorkerRpc: await rpc(),
  registerThroughLoopbackApi: await api(),
  fillTmp: e.FILL_TMP === '1' ? attempt(() => writeFileSync('/tmp/fill', Buffer.alloc(100 << 20))) : 'skipped',
});
`;

const ISOLATED = detectBubblewrap();

describe('a hostile function in a process sandbox', () => {
  let b: BatonUp;
  let dir: string;
  before(async () => {
    b = await startUp(['--workers', '1']);
    dir = imageDir('baton-hostile-');
    writeFileSync(join(dir, 'hostile.mjs'), HOSTILE);
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs as a user of its own, and each escape it tries is refused while others are served', async (t) => {
    const status = JSON.parse(
      (await httpRequest(`${b.registration}/v1/status`)).text,
    ) as ClusterStatus;
    const isolation = status.workers[0]!.isolation ?? '';
    if (!isolation.includes('a user per sandbox'))
      return t.skip(
        `sandboxes do not get users of their own here (${isolation}): the worker is not root, or Baton's install is not readable by other users`,
      );
    const cp = status.supervised?.find((d) => d.name === 'control-plane');
    // Another function's files, readable by all, outside /tmp (which is private anyway).
    const otherDir = mkdtempSync('/var/tmp/baton-other-');
    t.after(() => rmSync(otherDir, { recursive: true, force: true }));
    chmodSync(otherDir, 0o755);
    const other = join(otherDir, 'index.mjs');
    writeFileSync(other, 'export default () => new Response("secret sauce");\n', { mode: 0o644 });
    const put = await putFunction(b.registration, 'hostile', {
      image: join(dir, 'hostile.mjs'),
      memoryMib: 256,
      env: {
        DATA_DIR: b.dataDir,
        BATON_DIST: fileURLToPath(new URL('../../dist', import.meta.url)),
        CP_PID: String(cp?.pid ?? 1),
        WORKER_RPC: status.workers[0]!.address,
        CP_API: new URL(b.registration).host,
        FILL_TMP: typeof ISOLATED === 'string' ? '0' : '1',
        OTHER_FUNCTION: other,
      },
    });
    assert.equal(put.status, 201, put.text);
    assert.equal((await putFunction(b.registration, 'bystander', { image: 'hello' })).status, 201);
    const res = await invoke(b.proxy, 'hostile');
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.text) as Record<string, unknown>;
    assert.notEqual(seen.uid, 0, 'the sandbox runs as root');
    // Without bubblewrap there is no private /tmp, and the host's files readable by all are readable.
    const { uid: _uid, fillTmp, readOtherFunction, ...escapes } = seen;
    for (const [what, outcome] of Object.entries(escapes))
      assert.notEqual(outcome, 'done', `${what} was not refused`);
    if (isolation.includes('no connections to this host')) {
      // The local network fence: nothing on this host answers it.
      assert.equal(escapes.callWorkerRpc, 'ECONNREFUSED');
      assert.equal(escapes.registerThroughLoopbackApi, 'ECONNREFUSED');
    } else assert.equal(escapes.callWorkerRpc, 'BATON_ERR_UNAUTHENTICATED');
    assert.equal(await getFunction(b.registration, 'sneaky'), undefined, 'nothing registered');
    if (typeof ISOLATED !== 'string') {
      assert.equal(fillTmp, 'ENOSPC', 'its /tmp is bounded');
      assert.equal(readOtherFunction, 'ENOENT', "another function's files are not there");
    }
    assert.equal((await invoke(b.proxy, 'bystander')).status, 200);
    assert.equal((await invoke(b.proxy, 'hostile')).status, 200, 'the cluster still serves it');
  });

  it('stops a fork bomb at its process limit while others are served', async (t) => {
    const isolation = JSON.parse(
      (await httpRequest(`${b.registration}/v1/status`)).text,
    ) as ClusterStatus;
    if (!(isolation.workers[0]!.isolation ?? '').includes('a user per sandbox'))
      return t.skip('the process limit is per sandbox user, which this host does not give');
    writeFileSync(join(dir, 'bomb.mjs'), BOMB);
    const put = await putFunction(b.registration, 'bomb', {
      image: join(dir, 'bomb.mjs'),
      memoryMib: 512,
    });
    assert.equal(put.status, 201, put.text);
    const res = await invoke(b.proxy, 'bomb');
    // Refused by its limit (EAGAIN) well before the bound, or ended by its cgroup: never all of them.
    if (res.status === 200) {
      const seen = JSON.parse(res.text) as { started: number; stoppedBy: string };
      assert.ok(seen.started < BOMB_BOUND, `started ${seen.started} processes`);
      assert.equal(seen.stoppedBy, 'EAGAIN');
    } else assert.match(res.text, /BATON_ERR_SANDBOX_EXITED|killed/);
    assert.equal((await invoke(b.proxy, 'bystander')).status, 200);
  });
});

/** Processes the fork bomb tries to start, past every limit a sandbox has (1024). */
const BOMB_BOUND = 1500;
/** Starts short-lived processes until one is refused, up to BOMB_BOUND. */
const BOMB = `
import { spawn } from 'node:child_process';
export default async () => {
  let started = 0;
  let stoppedBy = 'nothing';
  for (; started < ${BOMB_BOUND}; started++) {
    const child = spawn('sleep', ['2'], { stdio: 'ignore' });
    const err = await new Promise((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', (e) => resolve(e));
    });
    if (err !== undefined) { stoppedBy = err.code ?? String(err); break; }
  }
  return Response.json({ started, stoppedBy });
};
`;

/** An isolate's handler that looks for a way out, and burns CPU or memory on request. */
const HOSTILE_ISOLATE = `
// Computed at run time, so the bundler leaves it to the isolate.
const FS = ['node', 'fs'].join(':');
const probe = (f) => { try { const v = f(); return v === undefined ? 'undefined' : typeof v; } catch (err) { return err.name; } };
export default async (request) => {
  const path = new URL(request.url).pathname;
  if (path === '/spin') for (;;) {}
  if (path === '/oom') { const keep = []; for (;;) keep.push(new Array(4e6).fill(path)); }
  let dynamicImport;
  try { await import(FS); dynamicImport = 'done'; } catch (err) { dynamicImport = err.name ?? String(err); }
  return Response.json({
    process: typeof process,
    requireFs: probe(() => require(FS)),
    fetch: typeof fetch,
    webSocket: typeof WebSocket,
    escapeViaFunction: probe(() => Function('return process')()),
    escapeViaConstructor: probe(() => globalThis.constructor.constructor('return process')()),
    dynamicImport,
  });
};
`;

describe('a hostile function in an isolate', { skip: isolatesUnsupported }, () => {
  let b: BatonUp;
  let dir: string;
  before(async () => {
    b = await startUp(['--runtime', 'isolate', '--workers', '1', '--isolate-cpu-limit-ms', '300']);
    dir = imageDir('baton-hostile-isolate-');
    writeFileSync(join(dir, 'hostile.mjs'), HOSTILE_ISOLATE);
    writeFileSync(
      join(dir, 'reads-files.mjs'),
      "import { readFileSync } from 'node:fs';\nexport default () => new Response(readFileSync('/etc/shadow'));\n",
    );
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds no way to the host, and is stopped at its CPU and memory limits while others are served', async () => {
    const statically = await putFunction(b.registration, 'reads-files', {
      image: join(dir, 'reads-files.mjs'),
    });
    assert.equal(statically.status, 400, 'a Node module import is refused at deploy');
    assert.match(statically.text, /node:fs.*Node modules do not exist in an isolate/);
    assert.equal(
      (
        await putFunction(b.registration, 'hostile', {
          image: join(dir, 'hostile.mjs'),
          memoryMib: 64,
        })
      ).status,
      201,
    );
    assert.equal((await putFunction(b.registration, 'bystander', { image: 'hello' })).status, 201);
    const res = await invoke(b.proxy, 'hostile');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), {
      process: 'undefined',
      requireFs: 'Error',
      fetch: 'undefined',
      webSocket: 'undefined',
      escapeViaFunction: 'ReferenceError',
      escapeViaConstructor: 'ReferenceError',
      dynamicImport: (JSON.parse(res.text) as { dynamicImport: string }).dynamicImport,
    });
    assert.notEqual((JSON.parse(res.text) as { dynamicImport: string }).dynamicImport, 'done');
    for (const [path, limit] of [
      ['/spin', /CPU time limit of 300 ms/],
      // Under load the CPU limit may come first: either stops it.
      ['/oom', /memory limit of \d+ MiB|CPU time limit of 300 ms/],
    ] as const) {
      const r = await invoke(b.proxy, 'hostile', {}, path);
      assert.ok(r.status >= 500, `${path}: ${r.status} ${r.text}`);
      assert.match(r.text, limit);
      assert.equal(
        (await invoke(b.proxy, 'bystander')).status,
        200,
        `others are served after ${path}`,
      );
    }
    assert.equal((await invoke(b.proxy, 'hostile')).status, 200, 'and it is served again');
  });
});

describe('a control plane whose API asks a token', () => {
  let b: BatonUp;
  let token: string;
  let dir: string;
  before(async () => {
    dir = imageDir('baton-api-token-');
    const file = join(dir, 'api-token');
    token = 'the-api-token-of-this-test-0123456789';
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    b = await startUp(['--runtime', 'simulated', '--api-token-file', file]);
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every API call without it (but /health), registers nothing, and serves the CLI that has it', async () => {
    const withToken = { authorization: `Bearer ${token}` };
    assert.equal((await httpRequest(`${b.registration}/health`)).status, 200);
    for (const [method, path] of [
      ['GET', '/v1/status'],
      ['GET', '/v1/functions'],
      ['PUT', '/v1/functions/sneaky'],
      ['DELETE', '/v1/functions/sneaky'],
      ['GET', '/metrics'],
      ['GET', '/v1/metrics'],
      ['POST', '/registerService'],
    ] as const) {
      for (const headers of [{}, { authorization: 'Bearer not-the-token-0123456789' }]) {
        const res = await httpRequest(`${b.registration}${path}`, {
          method,
          headers: { 'content-type': 'application/json', ...headers },
          ...(method === 'PUT' ? { body: JSON.stringify({ image: 'empty' }) } : {}),
        });
        assert.equal(res.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
      }
    }
    const listed = await httpRequest(`${b.registration}/v1/functions`, { headers: withToken });
    assert.equal(listed.status, 200);
    assert.deepEqual(JSON.parse(listed.text), { functions: [] }, 'nothing was registered');

    const env = { BATON_CP: b.registration };
    const refused = await runBaton(['deploy', 'fn', '--image', 'empty'], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /BATON_ERR_UNAUTHENTICATED|needs its token/);
    const deployed = await runBaton(['deploy', 'fn', '--image', 'empty'], {
      ...env,
      BATON_TOKEN: token,
    });
    assert.equal(deployed.code, 0, deployed.stderr);
    assert.equal((await invoke(b.proxy, 'fn')).status, 200);
  });
});

describe('a cluster that cannot isolate its sandboxes', () => {
  let b: BatonUp;
  before(async () => {
    b = await startUp(['--workers', '1', '--isolation', 'none']);
  });
  after(async () => {
    await b.stop();
  });

  it("says so when it starts and in every worker's status", async () => {
    const up = b.up.ready.addresses as { warnings?: string[] };
    assert.ok(
      up.warnings?.some((w) =>
        /--isolation none: sandboxes run .*with no namespaces and no limits/.test(w),
      ),
      JSON.stringify(up.warnings),
    );
    const banner = b.up.output();
    assert.match(banner, /WARNING: sandboxes are not fully isolated: --isolation none/);
    // On ports other than the CLI's defaults, the banner says how other shells find the cluster.
    assert.ok(
      banner.includes(
        `In other shells: export BATON_CP=${b.registration} BATON_DP=${b.proxy} BATON_DATA_DIR=${b.dataDir}\n`,
      ),
      banner,
    );
    assert.match(banner, /\nTry: baton deploy hello --image hello && baton invoke hello /);
    assert.match(banner, new RegExp(`dashboard: ${b.registration}/ui\n`));
    const status = await runBaton(['status'], { BATON_CP: b.registration });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /ISOLATION/);
    assert.match(status.stdout, /no namespaces, no limits/);
  });
});

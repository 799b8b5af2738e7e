/** The CLI for people against a running `baton up`: output, exit codes, one-line errors. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  BATON_BIN,
  runBaton,
  followBaton,
  startUp,
  type BatonUp,
  imageDir,
} from '../helpers/processes.js';
import { BATON_V8_FLAGS } from '../../src/cli/spawn-baton.js';
import { waitUntil } from '../helpers/baton-client.js';

describe('baton CLI', () => {
  let b: BatonUp;
  let env: Record<string, string>;
  let dir: string;
  before(async () => {
    b = await startUp();
    env = { BATON_CP: b.registration };
    dir = imageDir('baton-cli-');
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('deploys, invokes, lists and removes a built-in function', async () => {
    const deploy = await runBaton(
      ['deploy', 'cli-hello', '--image', 'hello', '--max', '2', '--env', 'GREETING=hi'],
      env,
    );
    assert.equal(deploy.code, 0, deploy.stderr);
    assert.match(deploy.stdout, /^deployed cli-hello \(hello\)\ninvoke: baton invoke cli-hello/);
    const inv = await runBaton(['invoke', 'cli-hello'], env);
    assert.equal(inv.code, 0, inv.stderr);
    assert.match(inv.stdout, /^Hello from cli-hello \(sandbox sb-/);
    const ls = await runBaton(['ls'], env);
    assert.equal(ls.code, 0);
    const lines = ls.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+IMAGE\s+SANDBOXES\s+IN-FLIGHT\s+QUEUED$/);
    assert.match(
      lines.find((l) => l.startsWith('cli-hello'))!,
      /^cli-hello\s+hello\s+1\s+0\s+0$/,
    );
    const json = JSON.parse((await runBaton(['ls', '--json'], env)).stdout) as Array<{
      spec: { name: string; env: Record<string, string> };
    }>;
    assert.deepEqual(json.find((f) => f.spec.name === 'cli-hello')?.spec.env, { GREETING: 'hi' });
    assert.equal((await runBaton(['deploy', 'cli-other', '--image', 'hello'], env)).code, 0);
    // Several at once; one that is not there is named and does not stop the others.
    const rm = await runBaton(['rm', 'cli-hello', 'cli-missing', 'cli-other'], env);
    assert.equal(rm.code, 1, rm.stderr);
    assert.equal(rm.stdout, 'deleted cli-hello\ndeleted cli-other\n');
    assert.equal(rm.stderr, 'baton rm: cli-missing: function "cli-missing" is not registered\n');
    const gone = await runBaton(['invoke', 'cli-hello'], env);
    assert.equal(gone.code, 1);
    assert.equal(
      gone.stderr,
      'baton invoke: cli-hello answered 404: function "cli-hello" is not registered\n',
    );
  });

  it('deploys a user module from a relative path and sends data and headers', async () => {
    writeFileSync(
      join(dir, 'index.mjs'),
      'export default async (req) => new Response(`${req.method} ${req.headers.get("x-k")} ${await req.text()}`);\n',
    );
    const deploy = await runBaton(['deploy', 'cli-echo', '--image', dir], env);
    assert.equal(deploy.code, 0, deploy.stderr);
    const inv = await runBaton(
      ['invoke', 'cli-echo', '--data', 'payload', '--header', 'x-k: v'],
      env,
    );
    assert.equal(inv.code, 0, inv.stderr);
    assert.equal(inv.stdout, 'POST v payload\n');
  });

  it("shows what a function's sandboxes wrote, and the last words of one that died", async () => {
    const logDir = join(dir, 'logger');
    mkdirSync(logDir);
    writeFileSync(
      join(logDir, 'index.mjs'),
      'export default (req) => { const p = new URL(req.url).pathname; console.log("served", p); if (p === "/die") { console.error("dying now"); setTimeout(() => process.exit(3), 5); } return new Response("ok"); };\n',
    );
    assert.equal((await runBaton(['deploy', 'cli-logs', '--image', logDir], env)).code, 0);
    const first = await runBaton(['invoke', 'cli-logs', '--path', '/first'], env);
    assert.equal(first.code, 0, first.stderr);
    const logs = await runBaton(['logs', 'cli-logs'], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(
      logs.stdout,
      // The readiness probe (GET /health) may come first.
      /^==> sandbox (sb-\S+) on worker-1 \(running\) <==\n(served \/health\n)*served \/first\n/,
    );
    const id = /sandbox (sb-\S+)/.exec(logs.stdout)![1]!;
    assert.equal((await runBaton(['invoke', 'cli-logs', '--path', '/die'], env)).code, 0);
    await waitUntil('the sandbox to exit', async () =>
      (await runBaton(['logs', 'cli-logs', '--sandbox', id], env)).stdout.includes('exited'),
    );
    const last = await runBaton(['logs', 'cli-logs', '--sandbox', id], env);
    assert.match(last.stdout, /\(exited: exited with code 3: [^)]*\) <==\n/);
    assert.match(last.stdout, /served \/die\ndying now\n/);
    const tail = await runBaton(['logs', 'cli-logs', '--sandbox', id, '--tail', '1'], env);
    assert.match(tail.stdout, /<==\ndying now\n$/);
    const future = new Date(Date.now() + 60_000).toISOString();
    const since = await runBaton(['logs', 'cli-logs', '--sandbox', id, '--since', future], env);
    assert.match(since.stdout, /<==\n\(no output\)\n$/);
    const recent = await runBaton(['logs', 'cli-logs', '--since', '10m'], env);
    assert.match(recent.stdout, /dying now\n/);
    const none = await runBaton(['logs', 'cli-logs', '--sandbox', 'sb-nope'], env);
    assert.equal(none.code, 1);
    assert.equal(
      none.stderr,
      'baton logs: no sandbox sb-nope of function "cli-logs" (running or recently exited)\n',
    );
  });

  it("follows logs with -f, and forgets a deleted function's", async () => {
    const logDir = join(dir, 'follow');
    mkdirSync(logDir);
    writeFileSync(
      join(logDir, 'index.mjs'),
      'export default (req) => { console.log("path", new URL(req.url).pathname); return new Response("ok"); };\n',
    );
    assert.equal((await runBaton(['deploy', 'cli-follow', '--image', logDir], env)).code, 0);
    assert.equal((await runBaton(['invoke', 'cli-follow', '--path', '/before'], env)).code, 0);
    const follow = followBaton(['logs', 'cli-follow', '-f'], env);
    try {
      await waitUntil('logs -f to print what was written before', () =>
        Promise.resolve(follow.stdout().includes('path /before\n')),
      );
      assert.equal((await runBaton(['invoke', 'cli-follow', '--path', '/after'], env)).code, 0);
      await waitUntil('logs -f to print a line written after it started', () =>
        Promise.resolve(follow.stdout().includes('path /after\n')),
      );
    } finally {
      assert.equal(await follow.stop(), 0);
    }
    assert.equal(follow.stdout().split('path /before').length, 2, 'printed once');
    assert.equal((await runBaton(['rm', 'cli-follow'], env)).code, 0);
    assert.equal((await runBaton(['deploy', 'cli-follow', '--image', logDir], env)).code, 0);
    const after = await runBaton(['logs', 'cli-follow'], env);
    assert.equal(after.stdout, 'no sandbox of cli-follow has written anything yet\n');
  });

  it('describes a function, and removes functions by prefix', async () => {
    for (const n of ['cli-p-one', 'cli-p-two'])
      assert.equal(
        (await runBaton(['deploy', n, '--image', 'hello', '--env', 'K=hush-value'], env)).code,
        0,
      );
    assert.equal((await runBaton(['invoke', 'cli-p-one'], env)).code, 0);
    const d = await runBaton(['describe', 'cli-p-one'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /^name:\s+cli-p-one\nimage:\s+hello\n/);
    assert.match(d.stdout, /\nenv:\s+K\n/);
    assert.doesNotMatch(d.stdout, /hush-value/);
    assert.match(d.stdout, /\nsandboxes:\s+1 ready/);
    assert.match(
      d.stdout,
      /\ninvoke:\s+baton invoke cli-p-one\s+or\s+curl -H 'Host: cli-p-one' http:\/\/127\.0\.0\.1:\d+\/\n/,
    );
    assert.match(
      d.stdout,
      /\nSANDBOX\s+WORKER\s+STATE\s+ADDRESS\s+READY AT\s+CREATION MS\nsb-\S+\s+worker-1\s+ready\s+127\.0\.0\.1:\d+/,
    );
    const missing = await runBaton(['describe', 'cli-nope'], env);
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, 'baton describe: function "cli-nope" is not registered\n');
    const rm = await runBaton(['rm', '--prefix', 'cli-p-'], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout, 'deleted cli-p-one\ndeleted cli-p-two\n');
    const again = await runBaton(['rm', '--prefix', 'cli-p-'], env);
    assert.equal(again.stdout, 'no function to delete\n');
  });

  it('refuses at deploy an image that cannot run, naming why', async () => {
    const bad = await runBaton(['deploy', 'cli-bad', '--image', '/no/such/dir'], env);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'baton deploy: image: image path /no/such/dir does not exist\n');
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const none = await runBaton(['deploy', 'cli-bad', '--image', empty], env);
    assert.match(
      none.stderr,
      /^baton deploy: image: image directory \S+ holds neither an executable "start" nor index/,
    );
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    writeFileSync(
      join(broken, 'index.ts'),
      'import { x } from "./missing.js";\nexport default (r: Request) => new Response(x +);\n',
    );
    const compile = await runBaton(['deploy', 'cli-bad', '--image', broken], env);
    assert.equal(compile.code, 1);
    assert.match(
      compile.stderr,
      /^baton deploy: image: cannot compile module: \S+index\.ts:2:\d+: /,
    );
    const ls = await runBaton(['ls', '--json'], env);
    assert.doesNotMatch(ls.stdout, /cli-bad/);
  });

  it('shows workers, data planes and sandboxes', async () => {
    const s = await runBaton(['status'], env);
    assert.equal(s.code, 0, s.stderr);
    assert.match(
      s.stdout,
      /^control plane http:\/\/127\.0\.0\.1:\d+: up \d+ s, \d+ functions, sandboxes \d+ ready/,
    );
    assert.match(s.stdout, /workers \(1\)\nID\s+ADDRESS\s+RUNTIME/);
    assert.match(s.stdout, /worker-1\s+127\.0\.0\.1:\d+\s+process/);
    assert.match(s.stdout, /data planes \(1\)/);
  });

  it("runs the bin and every daemon with Baton's V8 flags", () => {
    const shebang = readFileSync(BATON_BIN, 'utf8').split('\n')[0]!;
    const pids = [b.up.pid, ...((b.up.ready.addresses as { pids: number[] }).pids ?? [])];
    assert.ok(pids.length >= 4, `baton up, control plane, data plane, worker: ${pids.join(' ')}`);
    for (const flag of BATON_V8_FLAGS) {
      assert.ok(shebang.split(' ').includes(flag), `${shebang} lacks ${flag}`);
      for (const pid of pids) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        assert.ok(argv.includes(flag), `process ${pid} (${argv.join(' ')}) runs without ${flag}`);
      }
    }
  });

  it('fails in one line with a non-zero exit', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['deploy', 'x'], 2, /^baton deploy: --image: is required\n$/],
      [
        ['deploy'],
        2,
        /^baton deploy: expected a function name; usage: baton deploy NAME --image IMAGE \[options\]\n$/,
      ],
      [
        ['deploy', 'x', '--image', 'hello', '--max', 'lots'],
        2,
        /^baton deploy: --max: "lots" is not a number\n$/,
      ],
      [
        ['deploy', 'x', '--image', 'hello', '--env', 'NOEQUALS'],
        2,
        /^baton deploy: --env: "NOEQUALS" is not NAME=VALUE\n$/,
      ],
      [['deploy', 'Bad', '--image', 'hello'], 1, /^baton deploy: name: must be lowercase/],
      [['rm', 'never-there'], 1, /^baton rm: function "never-there" is not registered\n$/],
      [['rm'], 2, /^baton rm: give names, --prefix or --all \(one of them\); usage: baton rm NAME/],
      [['rm', 'x', '--all'], 2, /^baton rm: give names, --prefix or --all/],
      [['lgos', 'x'], 2, /^baton: unknown command "lgos"; did you mean "logs"\?/],
      [
        ['logs', 'x', '--since', 'yesterday'],
        2,
        /^baton logs: --since: "yesterday" is neither a duration/,
      ],
      [
        ['invoke', 'x', '--header', 'nocolon'],
        2,
        /^baton invoke: --header: "nocolon" is not NAME:VALUE\n$/,
      ],
      [['ls', 'extra'], 2, /^baton ls: Unexpected argument 'extra'/],
    ];
    for (const [args, code, err] of cases) {
      const r = await runBaton(args, env);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, err);
    }
    const down = await runBaton(['ls'], { BATON_CP: 'http://127.0.0.1:1' });
    assert.equal(down.code, 1);
    assert.match(
      down.stderr,
      /^baton ls: cannot reach the control plane at http:\/\/127\.0\.0\.1:1 .*is 'baton up' running\?\n$/,
    );
  });

  it('prints help for every command', async () => {
    for (const cmd of [
      'up',
      'deploy',
      'invoke',
      'ls',
      'rm',
      'status',
      'control-plane',
      'data-plane',
      'worker',
    ]) {
      const r = await runBaton([cmd, '--help']);
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, new RegExp(`^Usage: baton ${cmd}`));
      assert.match(r.stdout, /--help/);
    }
    const top = await runBaton(['--help']);
    assert.match(top.stdout, /^Usage: baton <command>/);
  });
});

/**
 * The process runtime's isolation on a host that has it (bubblewrap and
 * cgroups; CI installs bubblewrap and runs as root): namespaces, a read-only
 * root with a private /tmp, memory limits that OOM-kill and are reported,
 * CPU quotas that hold. Skipped, saying why, where the host cannot.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { imageDir } from '../helpers/processes.js';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/shared/logger.js';
import { PortPool } from '../../src/worker/ports.js';
import { ProcessRuntime } from '../../src/worker/runtimes/process/process-runtime.js';
import { detectBubblewrap } from '../../src/worker/runtimes/process/isolation/bubblewrap.js';
import { detectCgroups } from '../../src/worker/runtimes/process/isolation/cgroups.js';
import { spec } from '../helpers/specs.js';
import { httpRequest } from '../helpers/http.js';

const bwrap = detectBubblewrap();
const cgroups = detectCgroups(`baton-probe-${process.pid}`);
if (typeof cgroups !== 'string') await cgroups.close();
const skip = typeof bwrap === 'string' ? bwrap : typeof cgroups === 'string' ? cgroups : undefined;

/** This process's parent groups, in every hierarchy (v1) or the unified one (v2). */
function ourGroups(): string[] {
  const out: string[] = [];
  for (const h of ['/sys/fs/cgroup', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu']) {
    try {
      for (const n of readdirSync(h))
        if (n.startsWith(`baton-${process.pid}-`)) out.push(`${h}/${n}`);
    } catch {
      // no such hierarchy
    }
  }
  return out.sort();
}

const PROBE = `
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
export default async (req) => {
  const path = new URL(req.url).pathname;
  if (path === '/hog') { const keep = []; for (;;) keep.push(Buffer.alloc(8 << 20, 1)); }
  if (path === '/spin') {
    const t0 = Date.now(), c0 = process.cpuUsage();
    while (Date.now() - t0 < 1000) {}
    const c = process.cpuUsage(c0);
    return Response.json({ cpuMs: (c.user + c.system) / 1000 });
  }
  let rootWritable = true;
  try { writeFileSync('/baton-probe', 'x'); } catch { rootWritable = false; }
  writeFileSync('/tmp/baton-probe-' + process.env.BATON_SANDBOX_ID, 'x');
  let other = 'read';
  try { readFileSync(process.env.OTHER_FILE); } catch (err) { other = err.code; }
  return Response.json({ pid: process.pid, hostname: hostname(), rootWritable, tmp: readdirSync('/tmp'), root: readdirSync('/'), other });
};
`;

describe('process runtime isolation', { skip }, () => {
  let rt: ProcessRuntime;
  let dir: string;
  const exits: Array<[string, string]> = [];
  before(async () => {
    dir = imageDir('baton-iso-');
    writeFileSync(join(dir, 'index.mjs'), PROBE);
    rt = new ProcessRuntime({
      host: '127.0.0.1',
      ports: new PortPool(30400, 30589),
      logger: silentLogger(),
      stopGraceMs: 500,
      isolation: 'strict',
      minCpuLimitMilli: 100,
      minMemoryLimitMib: 64,
    });
    const report = await rt.checkHost();
    assert.match(report.notes.join('\n'), /namespaces/);
    assert.match(report.notes.join('\n'), /cgroup v[12]/);
    rt.onExit((id, reason) => exits.push([id, reason]));
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the sandbox in its own namespaces with a read-only root of system directories and a private /tmp', async () => {
    // Another function's world-readable file, outside /tmp (which is private anyway).
    const otherDir = mkdtempSync('/var/tmp/baton-other-');
    const other = join(otherDir, 'index.mjs');
    writeFileSync(other, 'export default () => new Response("mine");\n', { mode: 0o644 });
    chmodSync(otherDir, 0o755);
    const sb = await rt.create(
      'iso-ns',
      spec({ name: 'iso-ns', image: dir, env: { OTHER_FILE: other } }),
    );
    const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
    assert.equal(res.status, 200, res.text);
    const seen = JSON.parse(res.text) as {
      pid: number;
      hostname: string;
      rootWritable: boolean;
      tmp: string[];
      root: string[];
      other: string;
    };
    rmSync(otherDir, { recursive: true, force: true });
    assert.equal(seen.other, 'ENOENT', "another function's file is not there");
    for (const hidden of ['home', 'root', 'var', 'opt', 'srv', 'sys'])
      assert.ok(!seen.root.includes(hidden), `/${hidden} is visible: ${seen.root.join(' ')}`);
    assert.ok(seen.root.includes('usr') && seen.root.includes('etc'), seen.root.join(' '));
    assert.ok(seen.pid < 10, `pid ${seen.pid} in its own pid namespace`);
    assert.equal(seen.hostname, 'sandbox');
    assert.equal(seen.rootWritable, false);
    // Its /tmp holds what it wrote, and the host's /tmp does not.
    assert.ok(seen.tmp.includes('baton-probe-iso-ns'));
    assert.ok(!existsSync(join(tmpdir(), 'baton-probe-iso-ns')));
    await rt.delete(sb.id);
  });

  it('kills a sandbox over its memory limit and reports the OOM kill; a new one serves', async () => {
    const sb = await rt.create('iso-oom', spec({ name: 'iso-oom', image: dir, memoryMib: 96 }));
    const res = await httpRequest(`http://${sb.host}:${sb.port}/hog`).catch((err: Error) => err);
    assert.ok(res instanceof Error || res.status >= 500, 'the request does not succeed');
    const deadline = Date.now() + 10_000;
    while (!exits.some(([id]) => id === sb.id) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const reason = exits.find(([id]) => id === sb.id)?.[1] ?? 'no exit reported';
    assert.match(reason, /OOM killer: over its memory limit of 96 MiB/);
    const again = await rt.create(
      'iso-oom-2',
      spec({ name: 'iso-oom', image: dir, memoryMib: 96 }),
    );
    assert.equal((await httpRequest(`http://${again.host}:${again.port}/`)).status, 200);
    await rt.delete(again.id);
  });

  it('leaves no cgroup behind once closed', async () => {
    const before = ourGroups();
    const other = new ProcessRuntime({
      host: '127.0.0.1',
      ports: new PortPool(30590, 30599),
      logger: silentLogger(),
      stopGraceMs: 500,
      isolation: 'strict',
    });
    await other.checkHost();
    assert.ok(ourGroups().length > before.length, 'the runtime made its groups');
    const sb = await other.create('iso-gone', spec({ name: 'iso-gone', image: 'hello' }));
    assert.equal((await httpRequest(`http://${sb.host}:${sb.port}/`)).status, 200);
    await other.close();
    assert.deepEqual(ourGroups(), before);
  });

  it('holds a sandbox to its CPU quota once ready', async () => {
    const sb = await rt.create('iso-cpu', spec({ name: 'iso-cpu', image: dir, cpuMilli: 200 }));
    const res = await httpRequest(`http://${sb.host}:${sb.port}/spin`);
    const { cpuMs } = JSON.parse(res.text) as { cpuMs: number };
    // 1 s of wall time at 0.2 CPU: about 200 ms of CPU, far from the 1000 it would get unthrottled.
    assert.ok(cpuMs < 450, `used ${cpuMs} ms of CPU in 1 s under a 200 milli-CPU quota`);
    await rt.delete(sb.id);
  });
});

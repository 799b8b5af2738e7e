/**
 * What only the containerd runtime has, beyond the shared conformance suite:
 * limits set on the container and enforced, a crash's output kept however
 * busy the machine, the containers of a worker that ended without cleaning
 * up removed by its next start, and start-up errors that name the option.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { silentLogger } from '../../src/shared/logger.js';
import { InvalidConfigError } from '../../src/shared/errors.js';
import { PortPool } from '../../src/worker/ports.js';
import {
  ContainerdRuntime,
  netnsPrefix,
  normalizeImageRef,
  type ContainerdRuntimeOptions,
} from '../../src/worker/runtimes/containerd/containerd-runtime.js';
import { ctr } from '../../src/worker/runtimes/containerd/ctr.js';
import { pidsCgroup } from '../../src/worker/runtimes/containerd/pids-limit.js';
import { spec } from '../helpers/specs.js';
import { httpRequest } from '../helpers/http.js';
import { parentPid } from '../helpers/processes.js';
import {
  buildTestImage,
  containerdUnsupported,
  startContainerd,
  type TestContainerd,
} from '../helpers/containerd.js';

const IMAGE = 'baton.test/limits:1';
const CRASH = 'baton.test/crash-now:1';

/** Direct children of a process (from /proc). */
function childPids(parent: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => parentPid(n) === parent)
    .map(Number);
}

describe('image references', () => {
  it('qualifies Docker-style short names as containerd needs them', () => {
    assert.equal(normalizeImageRef('busybox'), 'docker.io/library/busybox:latest');
    assert.equal(normalizeImageRef('library/nginx:1.25'), 'docker.io/library/nginx:1.25');
    assert.equal(normalizeImageRef('cvetkovic/trace'), 'docker.io/cvetkovic/trace:latest');
    assert.equal(normalizeImageRef('ghcr.io/a/b'), 'ghcr.io/a/b:latest');
    assert.equal(normalizeImageRef('localhost:5000/x'), 'localhost:5000/x:latest');
    assert.equal(normalizeImageRef('baton.test/w:1'), 'baton.test/w:1');
    assert.equal(
      normalizeImageRef('docker.io/library/busybox@sha256:abc'),
      'docker.io/library/busybox@sha256:abc',
    );
  });
});

describe('containerd runtime', { skip: containerdUnsupported }, () => {
  let c: TestContainerd;
  const runtimes: ContainerdRuntime[] = [];
  const make = (extra: Partial<ContainerdRuntimeOptions> = {}) => {
    const rt = new ContainerdRuntime({
      host: '127.0.0.1',
      // A range no other suite uses: portmap redirects every local connection to these ports.
      ports: new PortPool(31400, 31449),
      logger: silentLogger(),
      address: c.address,
      namespace: c.namespace,
      stopGraceMs: 500,
      ...extra,
    });
    runtimes.push(rt);
    return rt;
  };
  before(async () => {
    c = await startContainerd();
    await ctr(c, [
      'images',
      'import',
      buildTestImage(c.dir, { ref: IMAGE, cmd: ['/bin/start.sh'] }),
    ]);
    await ctr(c, [
      'images',
      'import',
      buildTestImage(c.dir, { ref: CRASH, cmd: ['/bin/sh', '-c', 'echo last words >&2; exit 4'] }),
    ]);
  });
  after(async () => {
    for (const rt of runtimes) await rt.close();
    await c?.stop();
  });

  it('sets the memory limit and CPU quota from the requests, raised to the floors', async () => {
    const rt = make({ minMemoryLimitMib: 16, minCpuLimitMilli: 100 });
    await rt.checkHost();
    const sb = await rt.create(
      'ctr-limits-1',
      spec({ name: 'limits', image: IMAGE, memoryMib: 48, cpuMilli: 50 }),
    );
    const info = JSON.parse(await ctr(c, ['containers', 'info', sb.id])) as {
      Spec: {
        linux: { resources: { memory: { limit: number }; cpu: { quota: number; period: number } } };
      };
    };
    const r = info.Spec.linux.resources;
    assert.equal(r.memory.limit, 48 * 1024 * 1024);
    assert.equal(r.cpu.quota / r.cpu.period, 0.1, 'CPU quota of 100 milli-CPU (the floor)');
    await rt.delete(sb.id);
  });

  it('stops a fork bomb at the process limit, and removes the cgroup with the container', async () => {
    const rt = make();
    const report = await rt.checkHost();
    if (report.isolation.includes('no process limit'))
      return assert.match(report.warnings.join('\n'), /containers have no process limit: /);
    assert.match(report.isolation, /at most 1024 processes/);
    // Memory enough for the processes: it is the process limit that stops them here.
    const sb = await rt.create('ctr-bomb-1', spec({ name: 'bomb', image: IMAGE, memoryMib: 1024 }));
    const cgroup = pidsCgroup(c.namespace, sb.id)!;
    assert.equal(readFileSync(`${cgroup}/pids.max`, 'utf8').trim(), '1024');
    // 1500 sleepers asked for, bounded in time; forks past the limit fail inside the container.
    await ctr(c, [
      'tasks',
      'exec',
      '--exec-id',
      'bomb',
      sb.id,
      '/bin/sh',
      '-c',
      'i=0; while [ $i -lt 1500 ]; do /bin/sleep 20 2>/dev/null & i=$((i+1)); done; exit 0',
    ]).catch(() => undefined);
    const current = Number(readFileSync(`${cgroup}/pids.current`, 'utf8'));
    assert.ok(current > 900 && current <= 1024, `${current} processes in the container`);
    await rt.delete(sb.id);
    assert.ok(!existsSync(cgroup), 'its cgroup is gone');
  });

  it("refuses a function's escapes: its root is an unprivileged host user, its filesystem read-only, its /tmp bounded", async (t) => {
    const rt = make();
    const report = await rt.checkHost();
    const noUserns = report.warnings.find((w) =>
      w.startsWith("containers run as their image's user"),
    );
    if (noUserns !== undefined) return t.skip(noUserns);
    assert.match(report.isolation, /a user namespace \(its root is host uid \d+/);
    assert.match(report.isolation, /read-only but a private \/tmp \(64 MiB\)/);
    const sb = await rt.create('ctr-hostile-1', spec({ name: 'hostile', image: IMAGE }));
    const task = (await ctr(c, ['tasks', 'ls'])).split('\n').find((l) => l.startsWith(`${sb.id} `));
    const pid = Number(task?.trim().split(/\s+/)[1]);
    const first = Number(
      /^\s*0\s+(\d+)\s+65536$/m.exec(readFileSync(`/proc/${pid}/uid_map`, 'utf8'))?.[1],
    );
    assert.ok(first >= 2_100_000_000, `its root is host uid ${first}`);
    assert.match(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
      new RegExp(`^Uid:\\s+${first}\\s`, 'm'),
    );
    const secret = join(c.dir, 'host-secret');
    writeFileSync(secret, 'secret', { mode: 0o644 });
    const listener = createServer().listen(0, '127.0.0.1');
    await once(listener, 'listening');
    const hostPort = (listener.address() as AddressInfo).port;
    // Each attempt as the function would make it: the container's own user, in its namespaces.
    const attempt = (name: string, command: string) =>
      `if ${command} >/dev/null 2>&1; then echo "${name}: escaped"; else echo "${name}: refused"; fi`;
    const out = await ctr(c, [
      'tasks',
      'exec',
      '--exec-id',
      'hostile',
      sb.id,
      '/bin/sh',
      '-c',
      [
        attempt('write outside /tmp', 'sh -c "echo x > /bin/evil"'),
        attempt('fill /tmp', '/bin/busybox dd if=/dev/zero of=/tmp/fill bs=1M count=100'),
        attempt('join the root cgroup', 'sh -c "echo $$ > /sys/fs/cgroup/cgroup.procs"'),
        attempt('mount', '/bin/busybox mount -t tmpfs x /tmp'),
        attempt('set the hostname', 'hostname evil'),
        attempt('signal a host process', `kill -0 ${process.pid}`),
        attempt('read a host file', `cat ${secret}`),
        attempt(
          'connect to host loopback',
          `/bin/busybox nc -w 1 127.0.0.1 ${hostPort} </dev/null`,
        ),
        attempt('crash the host', 'sh -c "echo c > /proc/sysrq-trigger"'),
        'rm -f /tmp/fill',
      ].join('\n'),
    ]);
    listener.close();
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 9, out);
    for (const line of lines) assert.match(line, /: refused$/);
    // It serves on.
    assert.equal((await httpRequest(`http://${sb.host}:${sb.port}/`)).status, 200);
    await rt.delete(sb.id);
    // The image's copy for the range outlives its last container (kept from containerd's collector).
    const base = (await ctr(c, ['snapshots', 'ls']))
      .split('\n')
      .map((l) => l.split(/\s+/)[0]!)
      .find((k) => k.endsWith(`-${first}-${first}`));
    assert.ok(base, 'the remapped copy is there');
    assert.match(await ctr(c, ['snapshots', 'info', base]), /"containerd.io\/gc.root": "baton"/);
  });

  it('keeps the output of a container that exits at once, with both cores busy', async () => {
    // containerd's file:// logging lost it in most such runs (see loggerUri).
    const rt = make();
    await rt.checkHost();
    const burners = [0, 1].map(() =>
      spawn(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end);']),
    );
    try {
      for (let i = 0; i < 5; i++)
        await assert.rejects(rt.create(`ctr-crash-${i}`, spec({ name: 'crash', image: CRASH })), {
          message: /exited with code 4: last words/,
        });
    } finally {
      for (const b of burners) b.kill('SIGKILL');
    }
  });

  it('stops a handler that allocates without bound at the memory limit; the function serves again', async () => {
    const rt = make();
    await rt.checkHost();
    const sb = await rt.create('ctr-hog-1', spec({ name: 'hog', image: IMAGE, memoryMib: 32 }));
    const t0 = performance.now();
    // The CGI child is what grows and what the kernel kills; its answer ends early.
    const res = await httpRequest(`http://${sb.host}:${sb.port}/?hog`).then(
      (r) => r.text,
      (err: Error) => err.message,
    );
    assert.doesNotMatch(res, /allocated 1000000000/);
    assert.ok(performance.now() - t0 < 30_000);
    // The kernel counted the kill in the container's cgroup (v1: memory.oom_control, v2: memory.events).
    const counters = [
      `/sys/fs/cgroup/memory/${c.namespace}/${sb.id}/memory.oom_control`,
      `/sys/fs/cgroup/${c.namespace}/${sb.id}/memory.events`,
    ].filter((f) => existsSync(f));
    assert.ok(counters.length > 0, 'no memory cgroup of the container found');
    assert.match(readFileSync(counters[0]!, 'utf8'), /^oom_kill [1-9]/m);
    // The sandbox serves on; had the kernel picked its server instead, the sandbox would
    // be reported and a new one would serve (the control plane's replacement).
    const live = rt.list().some((s) => s.id === sb.id);
    const next = live
      ? sb
      : await rt.create('ctr-hog-2', spec({ name: 'hog', image: IMAGE, memoryMib: 32 }));
    const again = await httpRequest(`http://${next.host}:${next.port}/`, {
      headers: { requested_cpu: '1' },
    });
    assert.equal(again.status, 200);
    await rt.delete(next.id);
  });

  it("a worker's next start removes the containers and networks its last run left", async () => {
    const first = make({ identity: 'restart-test' });
    await first.checkHost();
    const sb = await first.create('ctr-stale-1', spec({ name: 'stale', image: IMAGE }));
    // The worker "dies": a new runtime of the same identity starts while the container runs.
    const second = make({ identity: 'restart-test' });
    const report = await second.checkHost();
    assert.match(report.notes.join('\n'), /removed 1 container\(s\) left by an earlier run/);
    assert.deepEqual(second.list(), []);
    assert.equal((await ctr(c, ['containers', 'ls', '-q'])).trim(), '');
    assert.ok(!existsSync(`/var/run/netns/${netnsPrefix('restart-test')}ctr-stale-1`));
    assert.doesNotMatch(
      execFileSync('iptables', ['-t', 'nat', '-S']).toString(),
      new RegExp(`--dport ${sb.port} `),
    );
    await first.close();
  });

  it("a worker's next start removes the network namespaces it left without a container, and only its own", async () => {
    // What a worker killed between making a namespace and starting its container leaves.
    const mine = `${netnsPrefix('netns-test')}ctr-orphan-1`;
    const theirs = `${netnsPrefix('another-worker')}ctr-orphan-2`;
    execFileSync('ip', ['netns', 'add', mine]);
    execFileSync('ip', ['netns', 'add', theirs]);
    try {
      const rt = make({ identity: 'netns-test' });
      const report = await rt.checkHost();
      assert.match(
        report.notes.join('\n'),
        /removed 1 network namespace\(s\) left by an earlier run/,
      );
      assert.ok(!existsSync(`/var/run/netns/${mine}`), 'its own leftover is gone');
      assert.ok(existsSync(`/var/run/netns/${theirs}`), "another worker's is left alone");
      await rt.close();
    } finally {
      for (const n of [mine, theirs])
        if (existsSync(`/var/run/netns/${n}`)) execFileSync('ip', ['netns', 'delete', n]);
    }
  });

  it('reports a container that exits while its event follower is down', async () => {
    const rt = make();
    await rt.checkHost();
    const exits: Array<[string, string]> = [];
    const reported = new Promise<void>((resolve) =>
      rt.onExit((id, reason) => {
        exits.push([id, reason]);
        resolve();
      }),
    );
    const sb = await rt.create('ctr-missed-1', spec({ name: 'missed', image: IMAGE }));
    // This process's `ctr events` child for this containerd, found by its arguments and ended by PID.
    const followers = childPids(process.pid).filter((pid) => {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.includes('events') && argv.includes(c.address);
    });
    assert.ok(followers.length > 0, 'no event follower found');
    for (const pid of followers) process.kill(pid, 'SIGKILL');
    await ctr(c, ['tasks', 'kill', '--signal', 'SIGKILL', sb.id]);
    await reported;
    assert.equal(exits.length, 1);
    assert.equal(exits[0]![0], sb.id);
    assert.match(
      exits[0]![1],
      /^stopped while containerd events were not followed: httpd on port 80$/,
    );
    assert.deepEqual(rt.list(), []);
  });

  it('creates a sandbox whose id still holds an address from an interrupted creation', async () => {
    const rt = make();
    await rt.checkHost();
    const id = 'ctr-interrupted-1';
    // What a worker killed between CNI ADD and its cleanup leaves: an address reserved for the id.
    execFileSync('ip', ['netns', 'add', `baton-${id}`]);
    execFileSync('/usr/lib/cni/bridge', [], {
      input: JSON.stringify({
        cniVersion: '1.0.0',
        name: 'baton',
        type: 'bridge',
        bridge: 'baton0',
        isGateway: true,
        ipMasq: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.0.0/16' }]] },
      }),
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: 'ADD',
        CNI_CONTAINERID: id,
        CNI_NETNS: `/var/run/netns/baton-${id}`,
        CNI_IFNAME: 'eth0',
        CNI_PATH: '/usr/lib/cni',
      },
    });
    execFileSync('ip', ['netns', 'delete', `baton-${id}`]);
    const sb = await rt.create(id, spec({ name: 'interrupted', image: IMAGE }));
    const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
    assert.equal(res.status, 200);
    await rt.delete(id);
  });

  it('start-up errors name the option', async () => {
    await assert.rejects(
      make({ address: '/no/such.sock' }).checkHost(),
      (err: Error) =>
        err instanceof InvalidConfigError &&
        /^--containerd-address: no socket at \/no\/such\.sock/.test(err.message),
    );
    await assert.rejects(make({ cniPath: '/no/cni' }).checkHost(), /--cni-path: \/no\/cni lacks/);
    assert.throws(
      () => make({ cniSubnet: '10.0.0.0' }),
      /--cni-subnet: "10.0.0.0" is not an IPv4 CIDR/,
    );
    if (
      !execFileSync('sh', ['-c', 'command -v containerd-shim-runsc-v1 || true']).toString().trim()
    )
      await assert.rejects(
        make({ ociRuntime: 'runsc' }).checkHost(),
        /--oci-runtime: runsc needs containerd-shim-runsc-v1 on PATH/,
      );
  });
});

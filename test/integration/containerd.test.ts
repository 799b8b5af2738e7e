/**
 * The containerd runtime through `baton up` and `baton image`: an OCI image
 * built here and imported with the CLI, deployed, invoked cold and warm
 * through the data plane, its output shown by `baton logs`, and everything of
 * it gone after `baton rm`. Runs against a containerd of its own.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { ctr } from '../../src/worker/runtimes/containerd/ctr.js';
import { parentPid, runBaton, startUp, waitForExit, type BatonUp } from '../helpers/processes.js';
import { invoke, waitUntil } from '../helpers/baton-client.js';
import {
  buildTestImage,
  containerdUnsupported,
  startContainerd,
  type TestContainerd,
} from '../helpers/containerd.js';

const IMAGE = 'baton.test/it-workload:1';
/** Host ports for this file's sandboxes, apart from the conformance suites'. */
const PORT_RANGE = '30100-30199';

describe('containerd runtime end to end', { skip: containerdUnsupported }, () => {
  let c: TestContainerd;
  let b: BatonUp | undefined;
  let env: Record<string, string>;
  let imageFlags: string[];
  before(async () => {
    c = await startContainerd('baton');
    imageFlags = ['--containerd-address', c.address];
  });
  after(async () => {
    await b?.stop();
    await c?.stop();
  });

  it('baton image import: imports an OCI archive, lists and removes it; bad input is one line', async () => {
    const tar = buildTestImage(c.dir, { ref: IMAGE, cmd: ['/bin/start.sh'] });
    const imported = await runBaton(['image', 'import', tar, ...imageFlags]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.equal(imported.stdout, `imported ${IMAGE}\n`);
    const ls = await runBaton(['image', 'ls', ...imageFlags]);
    assert.match(ls.stdout, new RegExp(`^${IMAGE.replace(/\./g, '\\.')}$`, 'm'));

    const missing = await runBaton(['image', 'import', '/no/such.tar', ...imageFlags]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, 'baton image: import: /no/such.tar: no such file\n');
    const unreachable = await runBaton(['image', 'ls', '--containerd-address', '/no/such.sock']);
    assert.notEqual(unreachable.code, 0);
    assert.match(unreachable.stderr, /^baton image: containerd at \/no\/such\.sock: .+\n$/);
    const verb = await runBaton(['image', 'push', ...imageFlags]);
    assert.equal(verb.code, 2);
    assert.match(verb.stderr, /unknown image command "push"/);

    const other = buildTestImage(c.dir, { ref: 'baton.test/other:1', cmd: ['/bin/start.sh'] });
    assert.equal((await runBaton(['image', 'import', other, ...imageFlags])).code, 0);
    const rm = await runBaton(['image', 'rm', 'baton.test/other:1', ...imageFlags]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch((await runBaton(['image', 'ls', ...imageFlags])).stdout, /other/);
  });

  it('serves a function from the image cold and warm; baton logs shows its output; rm removes all of it', async () => {
    b = await startUp([
      '--runtime',
      'containerd',
      '--containerd-address',
      c.address,
      '--port-range',
      PORT_RANGE,
    ]);
    env = { BATON_CP: b.registration };
    const deploy = await runBaton(['deploy', 'ctr-fn', '--image', IMAGE, '--port', '80'], env);
    assert.equal(deploy.code, 0, deploy.stderr);

    const cold = await invoke(b.proxy, 'ctr-fn', { requested_cpu: '2', function: 'ctr-fn' });
    assert.equal(cold.status, 200, cold.text);
    assert.equal(cold.headers['x-baton-start'], 'cold');
    assert.equal((JSON.parse(cold.text) as { Function: string }).Function, 'ctr-fn');
    const warm = await invoke(b.proxy, 'ctr-fn', { requested_cpu: '0' });
    assert.equal(warm.status, 200);
    assert.equal(warm.headers['x-baton-start'], 'warm');

    const logs = await runBaton(['logs', 'ctr-fn'], env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /==> sandbox sb-\S+ on \S+ \(running\) <==\nhttpd on port 80\n/);

    const containers = () => ctr(c, ['containers', 'ls', '-q']).then((o) => o.trim());
    const ids = (await containers()).split('\n');
    assert.equal(ids.length, 1);
    // The sandbox's namespace carries its id (after a tag of its worker).
    const ownNamespace = () =>
      execFileSync('ip', ['netns', 'list'])
        .toString()
        .split('\n')
        .some((l) => l.split(' ')[0]!.endsWith(`-${ids[0]}`));
    assert.ok(ownNamespace(), 'the sandbox has its own network namespace');
    assert.equal((await runBaton(['rm', 'ctr-fn'], env)).code, 0);
    await waitUntil('containers deleted', async () => (await containers()) === '', 15_000);
    // The network goes last: port forwarding, then the namespace.
    await waitUntil('network namespace deleted', () => Promise.resolve(!ownNamespace()), 15_000);
    const nat = execFileSync('iptables', ['-t', 'nat', '-S']).toString();
    assert.doesNotMatch(nat, /--dport 301\d\d /, 'port forwarding left behind');
  });

  it('a worker killed with SIGKILL takes its containerd event follower with it', async () => {
    assert.ok(b !== undefined, 'the cluster of the previous test');
    const [follower] = eventFollowers(c.address);
    assert.ok(follower !== undefined, 'the worker follows containerd events');
    const worker = parentPid(follower);
    assert.ok(worker !== undefined && worker !== process.pid);
    process.kill(worker, 'SIGKILL');
    assert.ok(await waitForExit(follower, 10_000), 'the follower outlived its worker');
  });
});

/** `ctr events` processes following the containerd at `address`. */
function eventFollowers(address: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        return argv.includes('events') && argv.includes(address);
      } catch {
        return false;
      }
    })
    .map(Number);
}

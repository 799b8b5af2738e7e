/**
 * A cluster whose daemons each run on a "host" of their own: a network
 * namespace per daemon, joined by a bridge, no loopback between them (see
 * helpers/netns.ts). etcd, three control-plane replicas, a data plane and
 * two simulated workers; the test's requests come from a client namespace.
 * The leader is cut off from the network (not killed: its lease must run
 * out), then a worker's host is cut off, and the cluster goes on.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  ETCD_MISSING,
  startBaton,
  tempDir,
  waitForExit,
  type Started,
} from '../helpers/processes.js';
import { createNetwork, netnsUnavailable, type TestNetwork } from '../helpers/netns.js';
import { waitUntil } from '../helpers/baton-client.js';
import { API_TOKEN_ENV } from '../../src/shared/secrets.js';

const NETNS = netnsUnavailable();
/** Prints the status, a newline and the body of one request (given as JSON in argv). */
const FETCH_SCRIPT = `
const { url, method, body } = JSON.parse(process.argv[1]);
const headers = { authorization: 'Bearer ' + process.env.BATON_TOKEN };
if (body !== undefined) headers['content-type'] = 'application/json';
fetch(url, { method, body, headers, signal: AbortSignal.timeout(3000) }).then(
  async (r) => process.stdout.write(r.status + '\\n' + (await r.text())),
  (e) => process.stdout.write('0\\n' + e.message),
);
`;
const CPS = ['cp1', 'cp2', 'cp3'];
// Beyond loopback the control planes' API asks a token: they and the client read this one.
process.env[API_TOKEN_ENV] = 'the-api-token-across-hosts-0123456789';

interface Status {
  workers: Array<{ id: string }>;
  controlPlanes?: Array<{ id: string; role: string }>;
}

describe('a cluster across hosts (network namespaces)', { skip: ETCD_MISSING || NETNS }, () => {
  let net: TestNetwork;
  const dir = tempDir('baton-hosts-');
  const daemons = new Map<string, Started>();
  const at = (name: string) => net.machine(name).ip;
  const cpRpcs = () => CPS.map((c) => `${at(c)}:9090`).join(',');
  const start = async (machine: string, args: string[]) => {
    const prefix = ['ip', 'netns', 'exec', net.machine(machine).ns];
    daemons.set(
      machine,
      await startBaton([...args, '--host', at(machine), '--log-level', 'warn'], 60_000, prefix),
    );
  };
  /** One HTTP request from the client's host (node's fetch, run there); status and body. */
  const http = (url: string, init: { method?: string; body?: string } = {}) => {
    const out = net.run('client', process.execPath, [
      '-e',
      FETCH_SCRIPT,
      JSON.stringify({ url, ...init }),
    ]);
    const i = out.indexOf('\n');
    return { status: Number(out.slice(0, i)), text: out.slice(i + 1) };
  };
  const status = (cp: string): Status | undefined => {
    try {
      const r = http(`http://${at(cp)}:9091/v1/status`);
      return r.status === 200 ? (JSON.parse(r.text) as Status) : undefined;
    } catch {
      return undefined;
    }
  };
  const register = (cp: string, name: string) =>
    http(`http://${at(cp)}:9091/v1/functions/${name}`, {
      method: 'PUT',
      body: '{"image":"empty"}',
    });
  const invoke = (name: string) => http(`http://${at('dp')}:8080/function/${name}/`);

  before(async () => {
    net = createNetwork(['etcd', ...CPS, 'dp', 'w1', 'w2', 'client']);
    await start('etcd', [
      'etcd',
      '--client-port',
      '2379',
      '--peer-port',
      '2380',
      '--data-dir',
      join(dir, 'etcd'),
    ]);
    for (const [i, cp] of CPS.entries())
      await start(cp, [
        'control-plane',
        '--store',
        'etcd',
        '--etcd-endpoints',
        `http://${at('etcd')}:2379`,
        '--replica-id',
        `cp${i + 1}`,
        '--lease-ttl-s',
        '1',
        '--heartbeat-interval-ms',
        '300',
        '--worker-timeout-ms',
        '1500',
      ]);
    await start('dp', ['data-plane', '--cp-address', cpRpcs()]);
    for (const w of ['w1', 'w2'])
      await start(w, ['worker', '--cp-address', cpRpcs(), '--runtime', 'simulated', '--name', w]);
    await waitUntil('both workers to register', () =>
      Promise.resolve(status('cp1')?.workers.length === 2),
    );
  });
  after(async () => {
    for (const d of [...daemons.values()].reverse()) await d.stop(5000);
    net?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a function registered through a follower on another host', () => {
    const leader = status('cp1')?.controlPlanes?.find((r) => r.role === 'leader');
    assert.equal(leader?.id, 'cp1');
    assert.equal(register('cp2', 'remote').status, 201);
    assert.equal(invoke('remote').status, 200);
  });

  it('elects a new leader when the leader is cut off, and keeps serving', async () => {
    net.setLink('cp1', false);
    await waitUntil('another replica to lead', () =>
      Promise.resolve(
        status('cp2')?.controlPlanes?.find((r) => r.role === 'leader')?.id !== undefined &&
          status('cp2')?.controlPlanes?.find((r) => r.role === 'leader')?.id !== 'cp1',
      ),
    );
    await waitUntil('a registration to succeed', () =>
      Promise.resolve(register('cp3', 'after-partition').status === 201),
    );
    assert.equal(invoke('after-partition').status, 200);
    assert.equal(invoke('remote').status, 200);
    // Cut off, the old leader lost its lease and left (it cannot reach etcd to rejoin).
    assert.ok(await waitForExit(daemons.get('cp1')!.pid, 10_000), 'the cut-off leader exited');
  });

  it("replaces a cut-off worker's sandboxes on the other worker", async () => {
    const host = (fn: string) => {
      const r = http(`http://${at('cp2')}:9091/v1/functions/${fn}`);
      return (JSON.parse(r.text) as { sandboxList: Array<{ worker: string }> }).sandboxList;
    };
    const [first] = host('remote');
    assert.ok(first !== undefined);
    net.setLink(first.worker, false);
    await waitUntil('the sandbox to be replaced on the other worker', () =>
      Promise.resolve(host('remote').some((s) => s.worker !== first.worker)),
    );
    assert.equal(invoke('remote').status, 200);
    net.setLink(first.worker, true);
  });
});

/**
 * What a stranger can do to a cluster that `baton up` runs: every daemon's
 * internal RPC refuses calls without the cluster token, and the cluster
 * keeps serving as if nothing had been tried.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { startUp, type BatonUp } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { getFunction, invoke, putFunction } from '../helpers/baton-client.js';
import { controlPlaneService } from '../../src/rpc/contracts/control-plane.js';
import { dataPlaneService } from '../../src/rpc/contracts/data-plane.js';
import { workerService } from '../../src/rpc/contracts/worker.js';
import type { ServiceContract } from '../../src/rpc/contract.js';
import type { ClusterStatus } from '../../src/shared/http-api.js';

/** A POST to `address` `path` over HTTP/2 without credentials: its status and error code. */
async function strangerCall(
  address: string,
  path: string,
  body: unknown,
): Promise<{ status: number; code: string }> {
  const session = connect(`http://${address}`);
  session.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/json',
      });
      let status = 0;
      let text = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('error', reject);
      req.setEncoding('utf8');
      req.on('data', (c: string) => (text += c));
      // The RPC error body: {"code": ..., "message": ...}.
      req.on('end', () => {
        try {
          resolve({ status, code: String((JSON.parse(text) as { code?: unknown }).code) });
        } catch {
          resolve({ status, code: text });
        }
      });
      req.end(JSON.stringify(body));
    });
  } finally {
    session.close();
  }
}

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
        const res = await strangerCall(address, `/${contract.service}/${method}`, {
          workerId: status.workers[0]!.id,
          sandboxes: [],
          ids: [],
        });
        assert.deepEqual(
          res,
          { status: 401, code: 'BATON_ERR_UNAUTHENTICATED' },
          `${who} ${contract.service}/${method}`,
        );
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

/**
 * Secrets end to end through `baton up` and the CLI: a function that names a
 * secret gets its value as an environment variable; the value is in no API
 * answer, no CLI output and no daemon log; it outlives the control plane's
 * restart; it cannot be removed while a function uses it; a changed value
 * reaches the function's next sandboxes.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageDir, runBaton, startUp, type BatonUp } from '../helpers/processes.js';
import { httpRequest } from '../helpers/http.js';
import { waitUntil } from '../helpers/baton-client.js';
import type { ClusterStatus } from '../../src/shared/http-api.js';

describe('secrets', () => {
  let b: BatonUp;
  let env: Record<string, string>;
  let dir: string;
  const value = `s3cr3t-${randomBytes(8).toString('hex')}`;
  const next = `n3xt-${randomBytes(8).toString('hex')}`;
  before(async () => {
    b = await startUp();
    env = { BATON_CP: b.registration, BATON_DP: b.proxy };
    dir = imageDir('baton-secret-');
    writeFileSync(
      join(dir, 'index.mjs'),
      'export default () => new Response(process.env.DB_PASSWORD ?? "unset");\n',
    );
  });
  after(async () => {
    await b.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a function its secret and shows the value nowhere else', async () => {
    const set = await runBaton(['secret', 'set', 'DB_PASSWORD'], env, value);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'set DB_PASSWORD\n');
    const bad = await runBaton(['secret', 'set', 'db-password'], env, value);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /name: must match \[A-Za-z_\]/);
    const missing = await runBaton(['deploy', 'sec-fn', '--image', dir, '--secret', 'NOPE'], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /secrets: no secret named NOPE \(set it first/);

    // Survives the control plane's restart (loaded with the rest of the state).
    const status = JSON.parse(
      (await httpRequest(`${b.registration}/v1/status`)).text,
    ) as ClusterStatus;
    const cp = status.supervised?.find((d) => d.name === 'control-plane');
    assert.ok(cp?.pid, 'the control plane is supervised');
    process.kill(cp.pid, 'SIGKILL');
    await waitUntil('the control plane back', async () => {
      const res = await httpRequest(`${b.registration}/health`).catch(() => undefined);
      return res?.status === 200;
    });

    const deploy = await runBaton(
      ['deploy', 'sec-fn', '--image', dir, '--secret', 'DB_PASSWORD'],
      env,
    );
    assert.equal(deploy.code, 0, deploy.stderr);
    const inv = await runBaton(['invoke', 'sec-fn'], env);
    assert.equal(inv.code, 0, inv.stderr);
    assert.equal(inv.stdout.trim(), value, 'the sandbox has the value');

    const seen: Array<[string, string]> = [];
    for (const args of [
      ['ls', '--json'],
      ['describe', 'sec-fn'],
      ['describe', 'sec-fn', '--json'],
      ['secret', 'ls'],
      ['secret', 'ls', '--json'],
      ['status', '--json'],
    ]) {
      const r = await runBaton(args, env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      seen.push([`baton ${args.join(' ')}`, r.stdout + r.stderr]);
    }
    for (const path of [
      '/v1/functions',
      '/v1/functions/sec-fn',
      '/v1/status',
      '/v1/secrets',
      '/v1/secrets/DB_PASSWORD',
      '/v1/metrics',
    ])
      seen.push([path, (await httpRequest(`${b.registration}${path}`)).text]);
    for (const [where, text] of seen) assert.ok(!text.includes(value), `${where} shows the value`);
    assert.match(seen.find(([w]) => w === 'baton secret ls')![1], /^DB_PASSWORD\s+\S+\s+sec-fn$/m);
    assert.match(seen.find(([w]) => w === 'baton describe sec-fn')![1], /secrets:\s+DB_PASSWORD/);
    const logs = join(b.dataDir, 'logs');
    for (const file of readdirSync(logs))
      assert.ok(!readFileSync(join(logs, file), 'utf8').includes(value), `${file} holds the value`);
  });

  it('is not removed while a function uses it; a new value reaches new sandboxes', async () => {
    const used = await runBaton(['secret', 'rm', 'DB_PASSWORD'], env);
    assert.equal(used.code, 1);
    assert.match(used.stderr, /secret "DB_PASSWORD" is used by sec-fn/);
    const file = join(dir, 'next-value');
    writeFileSync(file, next);
    const set = await runBaton(['secret', 'set', 'DB_PASSWORD', '--from-file', file], env);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /used by sec-fn: their new sandboxes get it/);
    assert.equal((await runBaton(['rm', 'sec-fn'], env)).code, 0);
    assert.equal(
      (await runBaton(['deploy', 'sec-fn', '--image', dir, '--secret', 'DB_PASSWORD'], env)).code,
      0,
    );
    assert.equal((await runBaton(['invoke', 'sec-fn'], env)).stdout.trim(), next);
    assert.equal((await runBaton(['rm', 'sec-fn'], env)).code, 0);
    const rm = await runBaton(['secret', 'rm', 'DB_PASSWORD'], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal((await runBaton(['secret', 'ls'], env)).stdout, 'no secrets\n');
    const gone = await runBaton(['secret', 'rm', 'DB_PASSWORD'], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no secret named "DB_PASSWORD"/);
  });
});

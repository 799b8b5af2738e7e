/**
 * TLS on the public ports: `baton up --tls-cert-file --tls-key-file` serves
 * the control plane's API over HTTPS and the data plane's proxy over TLS
 * (HTTP/1.1, and HTTP/2 by ALPN); the CLI works with the certificate
 * trusted (NODE_EXTRA_CA_CERTS) and fails in one line without; bad TLS
 * options stop a daemon before it starts.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { connect } from 'node:http2';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { runBaton, startUp, tempDir, type BatonUp } from '../helpers/processes.js';

const OPENSSL_MISSING =
  spawnSync('openssl', ['version']).error === undefined
    ? false
    : 'openssl is not installed (apt-get install openssl)';

/** A self-signed certificate for 127.0.0.1, valid for a day. */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

describe('TLS on the public ports', { skip: OPENSSL_MISSING }, () => {
  let dir: string;
  let cert: string;
  let key: string;
  let b: BatonUp | undefined;
  before(() => {
    dir = tempDir('baton-tls-');
    ({ cert, key } = selfSigned(dir));
  });
  after(async () => {
    await b?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad TLS options before starting, naming them', async () => {
    const half = await runBaton(['up', '--tls-cert-file', cert]);
    assert.equal(half.code, 2);
    assert.equal(half.stderr, 'baton up: --tls-key-file: required with --tls-cert-file\n');
    const missing = await runBaton([
      'control-plane',
      '--tls-cert-file',
      '/no/such.pem',
      '--tls-key-file',
      key,
    ]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /^baton control-plane: --tls-cert-file: cannot read \/no\/such\.pem: /,
    );
    const swapped = await runBaton(['data-plane', '--tls-cert-file', key, '--tls-key-file', cert]);
    assert.equal(swapped.code, 2);
    assert.match(
      swapped.stderr,
      /^baton data-plane: --tls-cert-file\/--tls-key-file: not a certificate and its key/,
    );
  });

  it('serves the API over HTTPS and the proxy over TLS (HTTP/1.1 and h2); the CLI trusts the certificate it is given', async () => {
    b = await startUp(['--tls-cert-file', cert, '--tls-key-file', key]);
    assert.match(b.registration, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(b.proxy, /^https:\/\/127\.0\.0\.1:\d+$/);
    const trusted = { BATON_CP: b.registration, NODE_EXTRA_CA_CERTS: cert };
    const deploy = await runBaton(['deploy', 'tls-hello', '--image', 'hello'], trusted);
    assert.equal(deploy.code, 0, deploy.stderr);
    // No BATON_DP: the control plane says its data plane speaks TLS.
    const inv = await runBaton(['invoke', 'tls-hello'], trusted);
    assert.equal(inv.code, 0, inv.stderr);
    assert.match(inv.stdout, /^Hello from tls-hello/);

    const ca = readFileSync(cert);
    const agent = new Agent({ connect: { ca } });
    try {
      // By path: over TLS a Host header naming the function would not match the certificate.
      const h1 = await request(`${b.proxy}/function/tls-hello/`, { dispatcher: agent });
      assert.equal(h1.statusCode, 200);
      assert.match(await h1.body.text(), /^Hello from tls-hello/);
    } finally {
      await agent.close();
    }
    const h2 = await new Promise<{ status: number; alpn: string | false | undefined }>(
      (resolve, reject) => {
        const session = connect(b!.proxy, { ca });
        session.on('error', reject);
        const r = session.request({ ':path': '/', ':authority': 'tls-hello' });
        r.on('response', (h) => {
          const alpn = session.alpnProtocol;
          r.resume();
          r.on('end', () => {
            session.close();
            resolve({ status: Number(h[':status']), alpn });
          });
        });
        r.on('error', reject);
        r.end();
      },
    );
    assert.deepEqual(h2, { status: 200, alpn: 'h2' });

    const untrusted = await runBaton(['ls'], { BATON_CP: b.registration });
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^baton ls: .*(self[- ]signed|certificate)/i);
    const plain = await runBaton(['ls'], { BATON_CP: b.registration.replace('https:', 'http:') });
    assert.equal(plain.code, 1, 'plain HTTP is not answered');
  });
});

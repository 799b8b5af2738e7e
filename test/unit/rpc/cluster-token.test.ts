/** The cluster token on internal RPC, over real loopback sockets, and how daemons read it. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { silentLogger } from '../../../src/shared/logger.js';
import { InvalidConfigError, type RemoteError } from '../../../src/shared/errors.js';
import { defineService, unary } from '../../../src/rpc/contract.js';
import { tcpTransport, withCallMetadata } from '../../../src/rpc/transport.js';
import { withClusterToken } from '../../../src/rpc/cluster-token.js';
import {
  CLUSTER_TOKEN_FILE,
  ensureSecretFile,
  isLoopback,
  loadApiToken,
  loadClusterToken,
} from '../../../src/shared/secrets.js';
import { tempDir } from '../../helpers/processes.js';

const svc = defineService('guarded', {
  touch: unary(z.object({}), z.object({ touched: z.number() })),
});

const TOKEN = 'a-token-of-the-cluster-0123456789';

describe('cluster token on internal RPC', () => {
  it('serves callers with the token and refuses the others with 401 before the handler runs', async () => {
    let touched = 0;
    const transport = withClusterToken(tcpTransport, TOKEN);
    const listener = transport
      .createListener(silentLogger())
      .mount(svc, { touch: () => Promise.resolve({ touched: ++touched }) });
    const { port } = await listener.listen(0, '127.0.0.1');
    const at = { host: '127.0.0.1', port, logger: silentLogger() };
    const member = transport.connect(at);
    const stranger = tcpTransport.connect(at);
    const impostor = withClusterToken(tcpTransport, 'another-token-0123456789abcdef').connect(at);
    // Metadata added around the token (the control plane's epoch) keeps the token.
    const withEpoch = withCallMetadata(transport, () => ({ 'baton-epoch': '7' })).connect(at);
    try {
      assert.deepEqual(await member.client(svc).touch({}), { touched: 1 });
      assert.deepEqual(await withEpoch.client(svc).touch({}), { touched: 2 });
      for (const [who, channel] of [
        ['no token', stranger],
        ['a wrong token', impostor],
      ] as const) {
        await assert.rejects(channel.client(svc).touch({}), (err: RemoteError) => {
          assert.equal(err.code, 'BATON_ERR_UNAUTHENTICATED', who);
          return true;
        });
      }
      assert.equal(touched, 2, 'the handler never ran for a refused call');
    } finally {
      for (const c of [member, stranger, impostor, withEpoch]) await c.close();
      await listener.close();
    }
  });

  it('reads the token from a file only others cannot read, or from the environment, and names the option otherwise', () => {
    const dir = tempDir('baton-token-');
    try {
      const file = ensureSecretFile(dir, CLUSTER_TOKEN_FILE);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const token = loadClusterToken(file, {});
      assert.ok(token.length >= 32);
      assert.equal(ensureSecretFile(dir, CLUSTER_TOKEN_FILE), file, 'made once, then kept');
      assert.equal(readFileSync(file, 'utf8').trim(), token);

      chmodSync(file, 0o644);
      assert.throws(() => loadClusterToken(file, {}), /--cluster-token-file: .* chmod 600/);
      assert.throws(
        () => loadClusterToken(join(dir, 'missing'), {}),
        /--cluster-token-file: cannot read/,
      );
      const short = join(dir, 'short');
      writeFileSync(short, 'abc\n', { mode: 0o600 });
      assert.throws(() => loadClusterToken(short, {}), /at least 16 characters/);
      assert.equal(loadClusterToken(undefined, { BATON_CLUSTER_TOKEN: TOKEN }), TOKEN);
      assert.throws(
        () => loadClusterToken(undefined, {}),
        (err: Error) =>
          err instanceof InvalidConfigError &&
          /--cluster-token-file: .*BATON_CLUSTER_TOKEN/.test(err.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('asks an API token beyond loopback only, from a file or BATON_TOKEN', () => {
    assert.deepEqual(
      ['127.0.0.1', '127.4.5.6', '::1', '[::1]', 'localhost', '0.0.0.0', '10.0.0.1', '::'].map(
        isLoopback,
      ),
      [true, true, true, true, true, false, false, false],
    );
    assert.equal(loadApiToken(undefined, '127.0.0.1', {}), undefined);
    assert.equal(loadApiToken(undefined, '0.0.0.0', { BATON_TOKEN: TOKEN }), TOKEN);
    assert.equal(loadApiToken(undefined, '127.0.0.1', { BATON_TOKEN: TOKEN }), TOKEN);
    assert.throws(
      () => loadApiToken(undefined, '0.0.0.0', {}),
      /^InvalidConfigError: --api-token-file: the registration API would listen on 0\.0\.0\.0, beyond loopback/,
    );
  });
});

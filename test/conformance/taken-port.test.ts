/**
 * A sandbox port that something else took is a retryable failure
 * (BATON_ERR_UNAVAILABLE: the control plane tries again, the worker takes
 * another port), never a start failure of the function, and never a sandbox
 * made of the other program (which the readiness probe would take for the
 * sandbox if it answers HTTP). Each runtime whose sandboxes listen on host
 * ports learns it from a field (an exit code, a control-channel answer, an
 * errno, a bind of its own), not from the message.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { BatonError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import { PortPool } from '../../src/worker/ports.js';
import { ProcessRuntime } from '../../src/worker/runtimes/process/process-runtime.js';
import { PooledIsolateRuntime } from '../../src/worker/runtimes/isolate/pooled-isolate-runtime.js';
import type { SandboxRuntime } from '../../src/worker/runtimes/sandbox-runtime.js';
import { spec } from '../helpers/specs.js';
import { isolatesUnsupported } from '../helpers/isolates.js';

const cases: Array<{
  name: string;
  make: (ports: PortPool) => SandboxRuntime;
  skip?: string | undefined;
}> = [
  {
    name: 'process',
    make: (ports) =>
      new ProcessRuntime({ host: '127.0.0.1', ports, logger: silentLogger(), stopGraceMs: 200 }),
  },
  {
    name: 'process (pre-warmed pool)',
    make: (ports) =>
      new ProcessRuntime({
        host: '127.0.0.1',
        ports,
        logger: silentLogger(),
        stopGraceMs: 200,
        prewarm: 1,
      }),
  },
  {
    name: 'isolate',
    make: (ports) => new PooledIsolateRuntime({ host: '127.0.0.1', ports, logger: silentLogger() }),
    skip: isolatesUnsupported,
  },
];

/**
 * A port of someone else's: a server that hangs up on whoever connects, or
 * (`answers`) one that answers any HTTP request, as another cluster's sandbox would.
 */
function occupy(answers: boolean): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = answers
      ? createHttpServer((_req, res) => res.end('someone else'))
      : createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      resolve({ server, port: address.port });
    });
  });
}

for (const c of cases) {
  describe(`taken sandbox port: ${c.name}`, { skip: c.skip }, () => {
    const closers: Array<() => Promise<unknown>> = [];
    after(async () => {
      for (const close of closers.reverse()) await close();
    });

    for (const answers of [false, true])
      it(`fails the creation as retryable, and serves once the port is free${answers ? ' (its program answers HTTP)' : ''}`, async () => {
        const { server, port } = await occupy(answers);
        const rt = c.make(new PortPool(port, port));
        closers.push(() => rt.close());
        await assert.rejects(
          rt.create(`sb-taken-1-${answers}`, spec({ name: 'taken', image: 'hello' })),
          (err) => {
            assert.ok(err instanceof BatonError, String(err));
            assert.equal(err.code, 'BATON_ERR_UNAVAILABLE', err.message);
            assert.equal(err.retryable, true);
            assert.match(err.message, new RegExp(`port ${port}`));
            return true;
          },
        );
        await new Promise<void>((resolve) => server.close(() => resolve()));
        const sb = await rt.create(
          `sb-taken-2-${answers}`,
          spec({ name: 'taken', image: 'hello' }),
        );
        assert.equal(sb.port, port);
        assert.equal(await rt.delete(sb.id), true);
      });
  });
}

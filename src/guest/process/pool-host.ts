/**
 * Entry point of a pre-warmed process sandbox: Node is started, the
 * TypeScript loader registered and the servers' code loaded before any
 * function needs it. It waits for one assignment on its control channel,
 * becomes that function's sandbox (loads the handler, listens on the port),
 * and says `ready`. What is left of a cold start is loading the handler.
 */
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { builtinImage } from '../../workloads/builtin-images.js';
import { createHandlerServer, loadHandler, registerTypeScript } from './module-server.js';
import { POOL_CONTROL_FD, type PoolAssignment } from './pool-protocol.js';
import { SANDBOX_ENV, exitWithParent } from '../../shared/sandbox-environment.js';
import { createWorkloadServer } from '../../workloads/workload-server.js';

const control = new Socket({ fd: POOL_CONTROL_FD, readable: true, writable: true });
let server: Server | undefined;

function fail(reason: string): never {
  process.stderr.write(`sandbox: ${reason}\n`);
  control.write(`failed: ${reason.split('\n')[0]}\n`);
  process.exit(2);
}

async function become(a: PoolAssignment): Promise<void> {
  Object.assign(process.env, a.env);
  if (a.cwd !== undefined) process.chdir(a.cwd);
  if ('builtin' in a.serve) {
    const builtin = builtinImage(a.serve.builtin);
    if (builtin === undefined) fail(`"${a.serve.builtin}" is not a built-in image`);
    const ctx = {
      ...builtin,
      functionName: a.env[SANDBOX_ENV.functionName] ?? 'function',
      sandboxId: a.env[SANDBOX_ENV.sandboxId] ?? 'sandbox',
      machineName: a.env[SANDBOX_ENV.machineName] ?? 'baton',
    };
    server = createWorkloadServer(() => ctx);
  } else {
    try {
      server = createHandlerServer(await loadHandler(a.serve.handler));
    } catch (err) {
      fail(`cannot load handler: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  server.once('error', (err) => fail(`cannot listen on ${a.host}:${a.port}: ${err.message}`));
  server.listen(a.port, a.host, () => control.write('ready\n'));
}

let buffered = '';
const onData = (chunk: Buffer) => {
  buffered += chunk.toString('utf8');
  const nl = buffered.indexOf('\n');
  if (nl < 0) return;
  control.off('data', onData);
  let assignment: PoolAssignment;
  try {
    assignment = JSON.parse(buffered.slice(0, nl)) as PoolAssignment;
  } catch {
    fail('the assignment is not JSON');
  }
  void become(assignment);
};

exitWithParent();
process.once('SIGTERM', () => {
  if (server === undefined) process.exit(0);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
await registerTypeScript();
control.on('data', onData);
control.on('error', () => process.exit(0));
control.write('warm\n');

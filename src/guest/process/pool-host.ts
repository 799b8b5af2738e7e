/**
 * Entry point of a pre-warmed process sandbox: Node is started, the
 * TypeScript loader registered and the servers' code loaded before any
 * function needs it. It waits for one assignment on its control channel,
 * becomes that function's sandbox (loads the handler, listens on the port),
 * and says `ready`. What is left of a cold start is loading the handler.
 */
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { createHandlerServer, loadHandler, registerTypeScript } from './module-server.js';
import { POOL_CONTROL_FD, type PoolAssignment } from './pool-protocol.js';
import { SANDBOX_EXIT } from '../../shared/sandbox-environment.js';
import { builtinServer, exitWhenStopped } from './sandbox-server.js';

const control = new Socket({ fd: POOL_CONTROL_FD, readable: true, writable: true });
let server: Server | undefined;

function fail(reason: string, exitCode: number = SANDBOX_EXIT.cannotStart): never {
  process.stderr.write(`sandbox: ${reason}\n`);
  control.write(`failed: ${reason.split('\n')[0]}\n`);
  process.exit(exitCode);
}

async function become(a: PoolAssignment): Promise<void> {
  Object.assign(process.env, a.env);
  if (a.cwd !== undefined) process.chdir(a.cwd);
  if ('builtin' in a.serve) {
    server = builtinServer(a.serve.builtin, a.env);
    if (server === undefined) fail(`"${a.serve.builtin}" is not a built-in image`);
  } else {
    try {
      server = createHandlerServer(await loadHandler(a.serve.handler));
    } catch (err) {
      fail(`cannot load handler: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  server.once('error', (err) =>
    fail(`cannot listen on ${a.host}:${a.port}: ${err.message}`, SANDBOX_EXIT.cannotListen),
  );
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

exitWhenStopped(() => server);
await registerTypeScript();
control.on('data', onData);
control.on('error', () => process.exit(0));
control.write('warm\n');

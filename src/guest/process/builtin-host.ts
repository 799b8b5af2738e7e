/**
 * Entry point of a process sandbox running a built-in image. Listens on
 * $HOST:$PORT; exits on SIGTERM after open requests finish, or when the
 * worker goes away.
 */
import { builtinImage } from '../../workloads/builtin-images.js';
import { createWorkloadServer } from '../../workloads/workload-server.js';
import { SANDBOX_ENV, exitWithParent, requireEnv } from '../../shared/sandbox-environment.js';

const image = requireEnv(SANDBOX_ENV.image);
const builtin = builtinImage(image);
if (builtin === undefined) {
  process.stderr.write(`sandbox: "${image}" is not a built-in image\n`);
  process.exit(2);
}
const port = Number(requireEnv(SANDBOX_ENV.port));
const host = process.env[SANDBOX_ENV.host] ?? '127.0.0.1';
const ctx = {
  ...builtin,
  functionName: process.env[SANDBOX_ENV.functionName] ?? 'function',
  sandboxId: process.env[SANDBOX_ENV.sandboxId] ?? 'sandbox',
  machineName: process.env[SANDBOX_ENV.machineName] ?? 'baton',
};

const server = createWorkloadServer(() => ctx);
server.on('error', (err) => {
  process.stderr.write(`sandbox: cannot listen on ${host}:${port}: ${err.message}\n`);
  process.exit(3);
});
server.listen(port, host);
exitWithParent();
process.once('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});

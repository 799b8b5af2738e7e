/** What the process sandboxes' entry points share: the built-in images' server, and serving until told to stop. */
import type { Server } from 'node:http';
import { SANDBOX_ENV, SANDBOX_EXIT, exitWithParent } from '../../shared/sandbox-environment.js';
import { builtinImage } from '../../shared/builtin-images.js';
import { createWorkloadServer } from '../../workloads/workload-server.js';

/** The server of built-in `image` for the sandbox `env` describes; undefined if it is not one. */
export function builtinServer(
  image: string,
  env: Record<string, string | undefined>,
): Server | undefined {
  const builtin = builtinImage(image);
  if (builtin === undefined) return undefined;
  const ctx = {
    ...builtin,
    functionName: env[SANDBOX_ENV.functionName] ?? 'function',
    sandboxId: env[SANDBOX_ENV.sandboxId] ?? 'sandbox',
    machineName: env[SANDBOX_ENV.machineName] ?? 'baton',
  };
  return createWorkloadServer(() => ctx);
}

/**
 * Ends the process when the worker goes away, or on SIGTERM once the open
 * requests of the server (if there is one by then) finish.
 */
export function exitWhenStopped(server: () => Server | undefined): void {
  exitWithParent();
  process.once('SIGTERM', () => {
    const s = server();
    if (s === undefined) process.exit(0);
    s.close(() => process.exit(0));
    s.closeIdleConnections();
  });
}

/** Listens on host:port and serves until stopped; exits SANDBOX_EXIT.cannotListen when it cannot. */
export function serveSandbox(server: Server, host: string, port: number): void {
  server.on('error', (err) => {
    process.stderr.write(`sandbox: cannot listen on ${host}:${port}: ${err.message}\n`);
    process.exit(SANDBOX_EXIT.cannotListen);
  });
  server.listen(port, host);
  exitWhenStopped(() => server);
}

/**
 * Entry point of a process sandbox running a user's JS/TS module
 * ($BATON_HANDLER) on $HOST:$PORT; see module-server.ts.
 */
import { SANDBOX_ENV, SANDBOX_EXIT, requireEnv } from '../../shared/sandbox-environment.js';
import { createHandlerServer, loadHandler, type Handler } from './module-server.js';
import { serveSandbox } from './sandbox-server.js';

const handlerPath = requireEnv(SANDBOX_ENV.handler);
const port = Number(requireEnv(SANDBOX_ENV.port));
const host = process.env[SANDBOX_ENV.host] ?? '127.0.0.1';

let handler: Handler;
try {
  handler = await loadHandler(handlerPath);
} catch (err) {
  process.stderr.write(
    `sandbox: cannot load handler: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(SANDBOX_EXIT.cannotStart);
}
serveSandbox(createHandlerServer(handler), host, port);

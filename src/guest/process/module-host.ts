/**
 * Entry point of a process sandbox running a user's JS/TS module
 * ($BATON_HANDLER) on $HOST:$PORT; see module-server.ts.
 */
import { createHandlerServer, loadHandler, type Handler } from './module-server.js';
import { SANDBOX_ENV, exitWithParent, requireEnv } from '../../shared/sandbox-environment.js';

const handlerPath = requireEnv(SANDBOX_ENV.handler);
const port = Number(requireEnv(SANDBOX_ENV.port));
const host = process.env[SANDBOX_ENV.host] ?? '127.0.0.1';

async function main(): Promise<void> {
  let handler: Handler;
  try {
    handler = await loadHandler(handlerPath);
  } catch (err) {
    process.stderr.write(
      `sandbox: cannot load handler: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(2);
  }
  const server = createHandlerServer(handler);
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
}

void main();

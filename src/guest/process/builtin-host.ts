/**
 * Entry point of a process sandbox running a built-in image. Listens on
 * $HOST:$PORT; exits on SIGTERM after open requests finish, or when the
 * worker goes away.
 */
import { SANDBOX_ENV, SANDBOX_EXIT, requireEnv } from '../../shared/sandbox-environment.js';
import { builtinServer, serveSandbox } from './sandbox-server.js';

const image = requireEnv(SANDBOX_ENV.image);
const server = builtinServer(image, process.env);
if (server === undefined) {
  process.stderr.write(`sandbox: "${image}" is not a built-in image\n`);
  process.exit(SANDBOX_EXIT.cannotStart);
}
const port = Number(requireEnv(SANDBOX_ENV.port));
serveSandbox(server, process.env[SANDBOX_ENV.host] ?? '127.0.0.1', port);

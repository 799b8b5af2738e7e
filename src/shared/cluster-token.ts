/**
 * The cluster token: a secret every daemon of a cluster holds, for its
 * internal RPC (rpc/cluster-token.ts). `baton up` writes one to
 * `DATA_DIR/cluster-token` (mode 0600, kept across restarts); a daemon
 * started alone reads it from `--cluster-token-file` or BATON_CLUSTER_TOKEN.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidConfigError } from './errors.js';

export const CLUSTER_TOKEN_ENV = 'BATON_CLUSTER_TOKEN';
export const CLUSTER_TOKEN_FILE = 'cluster-token';
/** Shorter tokens are refused: they could be guessed. */
const MIN_TOKEN_CHARS = 16;

/**
 * The daemon's cluster token: from `file` (`--cluster-token-file`), else the
 * environment. InvalidConfigError naming the option when there is none, the
 * file cannot be read, others may read it, or the token is too short.
 */
export function loadClusterToken(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  let token: string;
  if (file !== undefined) {
    let mode: number;
    try {
      mode = statSync(file).mode;
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new InvalidConfigError(
        `--cluster-token-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
    if ((mode & 0o077) !== 0)
      throw new InvalidConfigError(
        `--cluster-token-file: ${file} may be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
      );
  } else {
    const fromEnv = env[CLUSTER_TOKEN_ENV];
    if (fromEnv === undefined || fromEnv.trim() === '')
      throw new InvalidConfigError(
        `--cluster-token-file: internal RPC is authenticated; give the cluster's token file (baton up writes DATA_DIR/${CLUSTER_TOKEN_FILE}) or set ${CLUSTER_TOKEN_ENV}`,
      );
    token = fromEnv.trim();
  }
  if (token.length < MIN_TOKEN_CHARS)
    throw new InvalidConfigError(
      `--cluster-token-file: the cluster token must have at least ${MIN_TOKEN_CHARS} characters`,
    );
  return token;
}

/**
 * The path of `dataDir`'s cluster token file, made (256 random bits, mode
 * 0600) if there is none yet, so that restarted daemons keep theirs.
 */
export function ensureClusterTokenFile(dataDir: string): string {
  const path = join(dataDir, CLUSTER_TOKEN_FILE);
  try {
    const fd = openSync(path, 'wx', 0o600);
    try {
      writeSync(fd, `${randomBytes(32).toString('base64url')}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return path;
}

/**
 * Baton's two secrets, each in a file only its owner may read:
 * - the cluster token, which every daemon holds for internal RPC
 *   (rpc/cluster-token.ts): `--cluster-token-file` or BATON_CLUSTER_TOKEN;
 * - the API token, which the control plane's registration and admin API
 *   asks of its callers (required when it listens beyond loopback):
 *   `--api-token-file` or BATON_TOKEN, which the CLI sends too.
 * `baton up` makes both in its data dir (`cluster-token`, and `api-token`
 * when it listens beyond loopback), kept across restarts.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { InvalidConfigError, UnauthenticatedError, errorMessage } from './errors.js';

export const CLUSTER_TOKEN_ENV = 'BATON_CLUSTER_TOKEN';
export const CLUSTER_TOKEN_FILE = 'cluster-token';
export const API_TOKEN_ENV = 'BATON_TOKEN';
export const API_TOKEN_FILE = 'api-token';
/** Shorter tokens are refused: they could be guessed. */
const MIN_TOKEN_CHARS = 16;

interface SecretSource {
  /** The option that names its file, for errors. */
  option: string;
  envVar: string;
  file: string | undefined;
  env: NodeJS.ProcessEnv;
}

/**
 * A secret from its file, else the environment; undefined when neither
 * gives one. InvalidConfigError naming the option when the file cannot be
 * read, others may read it, or the secret is too short.
 */
function readSecret(s: SecretSource): string | undefined {
  let token: string;
  if (s.file !== undefined) {
    let mode: number;
    try {
      mode = statSync(s.file).mode;
      token = readFileSync(s.file, 'utf8').trim();
    } catch (err) {
      throw new InvalidConfigError(
        `${s.option}: cannot read ${s.file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
    if ((mode & 0o077) !== 0)
      throw new InvalidConfigError(
        `${s.option}: ${s.file} may be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
      );
  } else {
    const fromEnv = s.env[s.envVar]?.trim();
    if (fromEnv === undefined || fromEnv === '') return undefined;
    token = fromEnv;
  }
  if (token.length < MIN_TOKEN_CHARS)
    throw new InvalidConfigError(
      `${s.option}: the token must have at least ${MIN_TOKEN_CHARS} characters`,
    );
  return token;
}

/** The daemon's cluster token (required: InvalidConfigError naming the option without one). */
export function loadClusterToken(
  file: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const token = readSecret({
    option: '--cluster-token-file',
    envVar: CLUSTER_TOKEN_ENV,
    file,
    env,
  });
  if (token === undefined)
    throw new InvalidConfigError(
      `--cluster-token-file: internal RPC is authenticated; give the cluster's token file (baton up writes DATA_DIR/${CLUSTER_TOKEN_FILE}) or set ${CLUSTER_TOKEN_ENV}`,
    );
  return token;
}

/**
 * The control plane's API token; undefined when none is given and the API
 * listens on loopback only (InvalidConfigError when it listens beyond).
 */
export function loadApiToken(
  file: string | undefined,
  host: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const token = readSecret({ option: '--api-token-file', envVar: API_TOKEN_ENV, file, env });
  if (token === undefined && !isLoopback(host))
    throw new InvalidConfigError(
      `--api-token-file: the registration API would listen on ${host}, beyond loopback, with no token; give a token file (baton up writes DATA_DIR/${API_TOKEN_FILE}) or set ${API_TOKEN_ENV}`,
    );
  return token;
}

/** Whether `host` is a loopback address (127.0.0.0/8, ::1 with or without brackets, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  return /^127(\.\d{1,3}){3}$/.test(h) || h === '::1' || h === 'localhost';
}

/**
 * The path of the secret file `name` in `dataDir`, made (256 random bits,
 * mode 0600) if there is none yet, so that restarted daemons keep theirs.
 */
export function ensureSecretFile(dataDir: string, name: string): string {
  const path = join(dataDir, name);
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

const BEARER = 'Bearer ';

/** `authorization` header value that carries `token`. */
export function bearer(token: string): string {
  return `${BEARER}${token}`;
}

/**
 * A check of an `authorization` header against `token` (compared in
 * constant time; only whether the lengths differ can be timed): throws
 * UnauthenticatedError with `missing` or `wrong`. It runs on every internal
 * RPC call, so it compares bytes rather than hashing both sides.
 */
export function bearerCheck(
  token: string,
  reasons: { missing: string; wrong: string },
): (authorization: string | undefined) => void {
  const expected = Buffer.from(token);
  return (authorization) => {
    if (authorization === undefined || !authorization.startsWith(BEARER))
      throw new UnauthenticatedError(reasons.missing);
    const presented = Buffer.from(authorization.slice(BEARER.length));
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
      throw new UnauthenticatedError(reasons.wrong);
  };
}

/** A certificate chain and its private key (PEM), for TLS on a public port. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * `--tls-cert-file` and `--tls-key-file`: both or neither. Read and checked
 * at start (they must make a TLS context), each error naming its option.
 */
export function loadTls(
  certFile: string | undefined,
  keyFile: string | undefined,
): TlsFiles | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined)
    throw new InvalidConfigError('--tls-cert-file: required with --tls-key-file');
  if (keyFile === undefined)
    throw new InvalidConfigError('--tls-key-file: required with --tls-cert-file');
  const read = (option: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new InvalidConfigError(`--${option}: cannot read ${file}: ${errorMessage(err)}`);
    }
  };
  const files = { cert: read('tls-cert-file', certFile), key: read('tls-key-file', keyFile) };
  try {
    createSecureContext(files);
  } catch (err) {
    throw new InvalidConfigError(
      `--tls-cert-file/--tls-key-file: not a certificate and its key (PEM): ${errorMessage(err)}`,
    );
  }
  return files;
}

/**
 * The commands the containerd runtime and `baton image` run: containerd's own
 * client `ctr`, `ip` and the CNI plugins, with containerd's defaults. Each
 * rejects with a CommandError: the command's one-line reason (CNI plugins
 * report errors as JSON on stdout; ctr and ip print them on stderr) and what
 * kind of failure it is, read from that text here and nowhere else.
 */
import { execFile } from 'node:child_process';

export { DEFAULT_CONTAINERD_ADDRESS } from '../../../shared/runtime-names.js';
export const DEFAULT_CONTAINERD_NAMESPACE = 'baton';

/** Longest a single command may take (an image pull can be slow). */
const COMMAND_TIMEOUT_MS = 120_000;

/** containerd is local: a socket that does not answer in this long is not going to. */
export const CONNECT_TIMEOUT = '2s';

export interface ContainerdTarget {
  /** containerd's socket. */
  address: string;
  namespace: string;
}

/**
 * What a failed command's output says, for callers that act on it:
 * `not-found`, what it was to act on does not exist (ctr); `already-reserved`,
 * an address is still reserved for this id (CNI host-local IPAM).
 */
export type CommandFailure = 'not-found' | 'already-reserved' | 'other';

export class CommandError extends Error {
  readonly failure: CommandFailure;
  constructor(reason: string) {
    super(reason);
    this.name = 'CommandError';
    this.failure = /duplicate allocation/.test(reason)
      ? 'already-reserved'
      : /not found/i.test(reason)
        ? 'not-found'
        : 'other';
  }
}

/** The failure kind of a command's rejection (`other` for anything that is not a CommandError). */
export function commandFailure(err: unknown): CommandFailure {
  return err instanceof CommandError ? err.failure : 'other';
}

export function ctr(target: ContainerdTarget, args: string[]): Promise<string> {
  return runCommand('ctr', [
    '--address',
    target.address,
    '--namespace',
    target.namespace,
    '--connect-timeout',
    CONNECT_TIMEOUT,
    ...args,
  ]);
}

export function runCommand(
  file: string,
  args: string[],
  extra: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: COMMAND_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
        ...(extra.env === undefined ? {} : { env: extra.env }),
      },
      (err, stdout, stderr) => {
        if (err === null) return resolve(stdout);
        const reason =
          cniErrorMessage(stdout) ?? (lastLine(stderr) || lastLine(stdout) || err.message);
        reject(new CommandError(reason));
      },
    );
    if (extra.input !== undefined) child.stdin?.end(extra.input);
  });
}

/** The last non-empty line, without logrus's `time=... level=... msg=` prefix. */
function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) =>
      l
        .replace(/^time="[^"]*" level=\w+ msg=/, '')
        .replace(/^"(.*)"$/, '$1')
        .trim(),
    )
    .filter((l) => l !== '');
  return lines.at(-1) ?? '';
}

function cniErrorMessage(stdout: string): string | undefined {
  try {
    const e = JSON.parse(stdout) as { msg?: string; details?: string };
    if (typeof e.msg !== 'string') return undefined;
    return e.details === undefined || e.details === '' ? e.msg : `${e.msg}: ${e.details}`;
  } catch {
    return undefined;
  }
}

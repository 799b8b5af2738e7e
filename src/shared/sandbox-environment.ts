/** The environment contract between the process runtime and the programs it starts. */

export const SANDBOX_ENV = {
  port: 'PORT',
  host: 'HOST',
  functionName: 'BATON_FUNCTION',
  sandboxId: 'BATON_SANDBOX_ID',
  image: 'BATON_IMAGE',
  handler: 'BATON_HANDLER',
  machineName: 'BATON_MACHINE',
} as const;

/**
 * How a sandbox program that fails before serving says why, by its exit
 * code: it cannot start (a bad environment, a handler that does not load),
 * or it cannot listen on $HOST:$PORT (the worker then tries another port).
 */
export const SANDBOX_EXIT = { cannotStart: 2, cannotListen: 3 } as const;

/**
 * Ends this process when its parent (the worker) goes away: the worker holds
 * the write end of our stdin, which the kernel closes when the worker dies.
 */
export function exitWithParent(): void {
  if (process.stdin.isTTY) return;
  process.stdin.on('data', () => undefined);
  process.stdin.once('end', () => process.exit(0));
  process.stdin.once('error', () => process.exit(0));
}

export function requireEnv(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') {
    process.stderr.write(`sandbox: environment variable ${name} is required\n`);
    process.exit(SANDBOX_EXIT.cannotStart);
  }
  return v;
}

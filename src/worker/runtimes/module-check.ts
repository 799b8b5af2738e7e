/**
 * Checks at registration that an image can run (the control plane asks a
 * worker before it stores a function): the image resolves to local code the
 * runtime takes, and a JS/TS module compiles with the relative imports it
 * names (npm packages are left to the module's own node_modules, as at run
 * time). esbuild's first error is reported as FILE:LINE:COLUMN: TEXT.
 */
import { build, type Message } from 'esbuild';
import { SandboxStartError } from '../../shared/errors.js';

/** esbuild's first error as one line naming where it is. */
export function esbuildFailure(err: unknown, entry: string, what: string): SandboxStartError {
  const first = (err as { errors?: Message[] }).errors?.[0];
  if (first === undefined) return new SandboxStartError(`${what} ${entry}: ${String(err)}`);
  const where =
    first.location === null
      ? entry
      : `${first.location.file}:${first.location.line}:${first.location.column}`;
  return new SandboxStartError(`${what}: ${where}: ${first.text}`);
}

/** Throws SandboxStartError when the module at `entry` (or a relative import of it) does not compile. */
export async function checkModuleCompiles(entry: string): Promise<void> {
  try {
    await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      packages: 'external',
      target: 'node20',
      logLevel: 'silent',
    });
  } catch (err) {
    throw esbuildFailure(err, entry, 'cannot compile module');
  }
}

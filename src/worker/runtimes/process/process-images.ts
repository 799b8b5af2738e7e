/**
 * What the process runtime starts for an image: Baton's built-in sandbox, the
 * module host serving a JS/TS module, or the image's own executable.
 */
import { nodeEntry } from '../../../shared/node-entry.js';
import type { PoolAssignment } from '../../../guest/process/pool-protocol.js';
import { SANDBOX_ENV } from '../../../shared/sandbox-environment.js';
import { resolveImageSource } from '../image-source.js';

export interface ProcessImage {
  command: string;
  args: string[];
  cwd: string | undefined;
  env: Record<string, string>;
  /** What a pre-warmed pool host would serve instead (built-ins and modules; not executables). */
  pool: PoolAssignment['serve'] | undefined;
}

export function resolveProcessImage(image: string, baseDir: string): ProcessImage {
  const source = resolveImageSource(image, baseDir, 'process');
  switch (source.kind) {
    case 'builtin': {
      const { command, args } = nodeEntry(import.meta.url, '../../../guest/process/builtin-host');
      return {
        command,
        args,
        cwd: undefined,
        env: { [SANDBOX_ENV.image]: image },
        pool: { builtin: image },
      };
    }
    case 'module': {
      const { command, args } = nodeEntry(import.meta.url, '../../../guest/process/module-host');
      return {
        command,
        args,
        cwd: source.dir,
        env: { [SANDBOX_ENV.handler]: source.path },
        pool: { handler: source.path },
      };
    }
    case 'executable':
      return { command: source.path, args: [], cwd: source.dir, env: {}, pool: undefined };
  }
}

/**
 * What the worker tells a pre-warmed pool host (src/guest/process/pool-host.ts)
 * on its control channel (fd 3), one JSON line, and what it answers: `warm`
 * once started, then `ready` once serving its assignment, or `failed: REASON`
 * (and exits, with SANDBOX_EXIT's code).
 */
export interface PoolAssignment {
  host: string;
  port: number;
  /** Working directory of the function (its image directory), if any. */
  cwd: string | undefined;
  /** Added to the host's environment before the function loads. */
  env: Record<string, string>;
  /** A built-in image to serve, or the path of a JS/TS module. */
  serve: { builtin: string } | { handler: string };
}

export const POOL_CONTROL_FD = 3;

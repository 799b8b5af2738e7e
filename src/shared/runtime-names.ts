/** The sandbox runtimes a worker can run (src/worker/runtimes/); `baton up` passes one to its workers. */
export const RUNTIME_NAMES = [
  'process',
  'isolate',
  'isolate-per-request',
  'containerd',
  'simulated',
] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

/**
 * Runtimes whose sandbox keeps nothing warm: every request gets a fresh
 * sandbox (isolate) of its own, and what stays is the function's compiled
 * code behind a port. Data planes mark each request to one `cold`.
 */
export const FRESH_PER_REQUEST_RUNTIMES: ReadonlySet<string> = new Set<RuntimeName>([
  'isolate-per-request',
]);

/**
 * Runtimes that can hold a standby sandbox: a port and the function's
 * compiled code, its isolate made by the first request it serves (in the
 * request's own path, a few milliseconds) and given up again when idle. The
 * control plane keeps one per function while every worker runs one of these,
 * so an invocation never waits for the round trip through the control plane
 * (Dandelion's and Cloudflare Workers' model).
 */
export const STANDBY_RUNTIMES: ReadonlySet<string> = new Set<RuntimeName>([
  'isolate',
  'isolate-per-request',
]);

/** containerd runtime: the OCI runtime containerd starts containers with (runsc is gVisor). */
export const OCI_RUNTIMES = ['runc', 'runsc'] as const;
export type OciRuntime = (typeof OCI_RUNTIMES)[number];

/** Process runtime isolation: auto (what the host supports), strict (refuse to start without all of it), none. */
export const ISOLATION_MODES = ['auto', 'strict', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

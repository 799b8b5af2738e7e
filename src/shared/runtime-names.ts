/** The sandbox runtimes a worker can run (src/worker/runtimes/); `baton up` passes one to its workers. */
export const RUNTIME_NAMES = [
  'process',
  'isolate',
  'isolate-per-request',
  'containerd',
  'simulated',
] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

/** containerd runtime: where containerd listens unless told otherwise. */
export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

/** containerd runtime: the OCI runtime containerd starts containers with (runsc is gVisor). */
export const OCI_RUNTIMES = ['runc', 'runsc'] as const;
export type OciRuntime = (typeof OCI_RUNTIMES)[number];

/** Process runtime isolation: auto (what the host supports), strict (refuse to start without all of it), none. */
export const ISOLATION_MODES = ['auto', 'strict', 'none'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

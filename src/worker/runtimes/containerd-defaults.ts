/** Defaults of the containerd runtime that the CLI shows without loading the runtime. */
export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';
export const DEFAULT_CONTAINERD_NAMESPACE = 'baton';

/** Why the isolate runtimes cannot run on this host, if so: isolated-vm is an optional native addon. */
export const isolatesUnsupported: string | undefined = await import('isolated-vm').then(
  () => undefined,
  (err: Error) => `isolated-vm is not installed or did not build: ${err.message.split('\n')[0]}`,
);

/**
 * What the containerd runtime needs of its host, checked once at start: root,
 * a containerd that answers, the OCI runtime's shim, `ip` and `cat`. Each
 * missing piece is an InvalidConfigError naming the option or the package.
 */
import { existsSync } from 'node:fs';
import type { OciRuntime } from '../../../shared/runtime-names.js';
import { InvalidConfigError, errorMessage } from '../../../shared/errors.js';
import type { ContainerdClient } from './containerd-client.js';
import { onPath, pathOf } from '../../../shared/path-lookup.js';

/** containerd's runtime name and shim binary of each OCI runtime. */
export const SHIMS: Record<OciRuntime, { runtime: string; shim: string }> = {
  runc: { runtime: 'io.containerd.runc.v2', shim: 'containerd-shim-runc-v2' },
  runsc: { runtime: 'io.containerd.runsc.v1', shim: 'containerd-shim-runsc-v1' },
};

export interface ContainerdHost {
  /** containerd's version. */
  version: string;
  /** Path of `cat`, which the container logger runs. */
  cat: string;
}

export async function checkContainerdHost(
  address: string,
  ociRuntime: OciRuntime,
  containerd: ContainerdClient,
): Promise<ContainerdHost> {
  if (process.getuid?.() !== 0)
    throw new InvalidConfigError(
      '--runtime containerd: needs root (network namespaces, CNI and containerd are root-only here)',
    );
  if (!existsSync(address))
    throw new InvalidConfigError(
      `--containerd-address: no socket at ${address} (is containerd running?)`,
    );
  let version: string;
  try {
    version = await containerd.version();
  } catch (err) {
    throw new InvalidConfigError(
      `--containerd-address: cannot reach containerd at ${address}: ${errorMessage(err)}`,
    );
  }
  const shim = SHIMS[ociRuntime];
  if (!onPath(shim.shim))
    throw new InvalidConfigError(
      `--oci-runtime: ${ociRuntime} needs ${shim.shim} on PATH, which is not there`,
    );
  if (!onPath('ip'))
    throw new InvalidConfigError('--runtime containerd: needs the `ip` command (Debian: iproute2)');
  const cat = pathOf('cat');
  if (cat === undefined)
    throw new InvalidConfigError(
      '--runtime containerd: needs the `cat` command for container output (Debian: coreutils)',
    );
  return { version, cat };
}

/** What a starting worker removed of an earlier run of itself, for its report. */
export function leftoverNotes(containers: number, networks: number): string[] {
  return [
    ...(containers > 0
      ? [`removed ${containers} container(s) left by an earlier run of this worker`]
      : []),
    ...(networks > 0
      ? [`removed ${networks} network namespace(s) left by an earlier run of this worker`]
      : []),
  ];
}

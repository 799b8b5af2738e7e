/**
 * Who a container's processes are on the host. By default (`--container-user
 * remapped`) every container of a worker runs in a user namespace whose ids
 * 0..65535 are host ids of a range of the worker's own, so the image's root
 * is an unprivileged user outside: what Docker's userns-remap does. The range
 * follows from the worker's identity, so a restarted worker finds the copy
 * of each image containerd made for it (see UserRange), and workers sharing
 * a host do not share ids. It lies above the process runtime's range
 * (2000000000 + port).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { OciRuntime } from '../../../shared/runtime-names.js';
import type { UserRange } from './containerd-client.js';

export const CONTAINER_USERS = ['remapped', 'image'] as const;
export type ContainerUsers = (typeof CONTAINER_USERS)[number];

const FIRST_HOST_ID = 2_100_000_000;
const RANGE_SIZE = 65_536;
const RANGES = 4096;

/** The worker's range of host ids. */
export function userRangeOf(identity: string): UserRange {
  const slot = createHash('sha256').update(identity).digest().readUInt32BE(0) % RANGES;
  return { first: FIRST_HOST_ID + slot * RANGE_SIZE, size: RANGE_SIZE };
}

/**
 * The range containers run in, or why they run as their image's user: what
 * was asked, what the OCI runtime does, and whether the kernel has user
 * namespaces. `warning` is set when remapping was asked and the host cannot.
 */
export function containerUsers(
  asked: ContainerUsers,
  ociRuntime: OciRuntime,
  identity: string,
): { range?: UserRange; note: string; warning?: string } {
  if (asked === 'image')
    return { note: "the image's user (--container-user image: root if the image says so)" };
  if (ociRuntime === 'runsc')
    return { note: "the image's user, inside gVisor's own kernel (runsc: no user namespace)" };
  const max = userNamespaces();
  if (max !== undefined)
    return {
      note: "the image's user (root if the image says so)",
      warning: `containers run as their image's user: ${max}`,
    };
  const range = userRangeOf(identity);
  return {
    range,
    note: `a user namespace (its root is host uid ${range.first}, its users up to ${range.first + range.size - 1})`,
  };
}

/** Why this kernel gives no user namespaces, or undefined when it does. */
function userNamespaces(): string | undefined {
  try {
    const max = Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8'));
    return max > 0 ? undefined : 'user namespaces are off (sysctl user.max_user_namespaces is 0)';
  } catch {
    return 'this kernel has no user namespaces (/proc/sys/user/max_user_namespaces is missing)';
  }
}

/** The containerd runtime's own worker options, and its constructor options from the worker's values. */
import type { Logger } from '../../../shared/logger.js';
import { OCI_RUNTIMES } from '../../../shared/runtime-names.js';
import { enumOption, stringOption, type OptionValues } from '../../../shared/option-specs.js';
import { z } from 'zod';
import {
  hostPortOptions,
  startedSandboxOptions,
  type SHARED_RUNTIME_OPTIONS,
} from '../runtime-options.js';
import { DEFAULT_CONTAINERD_ADDRESS, DEFAULT_CONTAINERD_NAMESPACE } from './ctr.js';
import { DEFAULT_CNI_BRIDGE, DEFAULT_CNI_SUBNET } from './cni-network.js';
import type { ContainerdRuntimeOptions } from './containerd-runtime.js';
import { CONTAINER_USERS } from './container-users.js';

export const CONTAINERD_OPTIONS = {
  'containerd-address': stringOption(
    DEFAULT_CONTAINERD_ADDRESS,
    "containerd runtime: containerd's socket",
    'PATH',
  ),
  'containerd-namespace': stringOption(
    DEFAULT_CONTAINERD_NAMESPACE,
    'containerd runtime: containerd namespace for images and containers',
    'NS',
    z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-"'),
  ),
  'oci-runtime': enumOption(
    OCI_RUNTIMES,
    'runc',
    `containerd runtime: ${OCI_RUNTIMES.join(' or ')} (gVisor)`,
    'NAME',
    'OCI runtime',
  ),
  'container-user': enumOption(
    CONTAINER_USERS,
    'remapped',
    "containerd runtime: remapped (a container's root is an unprivileged host user, in a user namespace) or image (the image's user as is, often root)",
    'MODE',
    'container user mode',
  ),
  'cni-subnet': stringOption(
    DEFAULT_CNI_SUBNET,
    "containerd runtime: the sandboxes' bridge network",
    'CIDR',
  ),
  'cni-bridge': stringOption(
    DEFAULT_CNI_BRIDGE,
    'containerd runtime: name of the bridge interface',
    'NAME',
  ),
  'cni-path': {
    ...stringOption(undefined, 'containerd runtime: directory of the CNI plugins', 'DIR'),
    defaultText: '/usr/lib/cni or /opt/cni/bin',
  },
};

export function containerdRuntimeOptions(
  v: OptionValues<typeof SHARED_RUNTIME_OPTIONS & typeof CONTAINERD_OPTIONS>,
  host: string,
  logger: Logger,
): ContainerdRuntimeOptions {
  return {
    ...hostPortOptions(v, host, logger),
    ...startedSandboxOptions(v),
    address: v['containerd-address'],
    namespace: v['containerd-namespace'],
    ociRuntime: v['oci-runtime'],
    containerUsers: v['container-user'],
    cniSubnet: v['cni-subnet'],
    cniBridge: v['cni-bridge'],
    ...(v['cni-path'] === undefined ? {} : { cniPath: v['cni-path'] }),
  };
}

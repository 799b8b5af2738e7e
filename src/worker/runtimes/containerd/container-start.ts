/**
 * A container's start with its network. Without a user namespace the
 * network namespace is made first and the container joins it while the CNI
 * plugins attach it, both at once. In a user namespace the container must
 * make its own (see UserRange): it is named after the sandbox once the task
 * runs (`ip netns attach`) and attached then; the function's server may bind
 * its port before the address exists, and readiness is probed after both.
 */
import { readFileSync } from 'node:fs';
import { SandboxStartError, UnavailableError, errorMessage } from '../../../shared/errors.js';
import { SANDBOX_TMP_MIB } from '../limits.js';
import type { CniNetwork } from './cni-network.js';
import type { ContainerRun, ContainerdClient, UserRange } from './containerd-client.js';
import { waitAtMost } from '../../../shared/time.js';

export interface ContainerStart {
  run: Omit<ContainerRun, 'netnsPath' | 'users' | 'tmpMib'>;
  hostPort: number;
  containerPort: number;
  users: UserRange | undefined;
  /** Resolves when the task has ended. */
  exited: Promise<void>;
}

/**
 * Resolves how long the task and the network took from the call.
 * SandboxStartError when the container cannot start (the image may be
 * gone: it is forgotten), UnavailableError when the network fails.
 */
export async function startContainer(
  containerd: ContainerdClient,
  network: CniNetwork,
  c: ContainerStart,
): Promise<{ startMs: number; networkMs: number }> {
  const { id, ref } = c.run;
  const t0 = performance.now();
  let startMs = 0;
  let networkMs = 0;
  if (c.users === undefined) await network.createNamespace(id);
  const joined =
    c.users === undefined ? { netnsPath: network.namespacePath(id) } : { users: c.users };
  const run = containerd.run({ ...c.run, ...joined, tmpMib: SANDBOX_TMP_MIB }).then(() => {
    startMs = performance.now() - t0;
  });
  const named =
    c.users === undefined
      ? Promise.resolve()
      : run.then(() => network.adoptNamespace(id, readPid(c.run.pidFile)));
  const attached = named
    .then(() => network.attach(id, c.hostPort, c.containerPort))
    .then(() => {
      networkMs = performance.now() - t0;
    });
  const [net, started] = await Promise.allSettled([attached, run]);
  if (started.status === 'rejected') {
    containerd.forgetImage(ref);
    const reason = errorMessage(started.reason);
    const hint =
      c.users !== undefined && /permission denied/i.test(reason)
        ? ` (its root is host uid ${c.users.first}, which must be able to pass through containerd's root and state directories: chmod 711 them, or run with --container-user image)`
        : '';
    throw new SandboxStartError(`cannot start a container of ${ref}: ${reason}${hint}`);
  }
  // A container that exits at once may take its own network namespace with it before it
  // is named: then its exit is the reason, which the caller's readiness probe reports.
  if (net.status === 'rejected' && !(c.users !== undefined && (await waitAtMost(c.exited, 1000))))
    throw new UnavailableError(`cannot attach ${id} to the network: ${errorMessage(net.reason)}`);
  return { startMs, networkMs };
}

function readPid(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

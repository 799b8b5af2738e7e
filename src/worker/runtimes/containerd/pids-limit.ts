/**
 * A process limit for each container. `ctr run` (containerd 1.6) sets no
 * `pids.max`, so a container could fork until the host has no process ids
 * left. Before the container starts, its cgroup (`/NAMESPACE/ID`, where
 * containerd puts it in every hierarchy) is made with `pids.max` set; runc
 * joins it and keeps that limit, and removes the cgroup with the container.
 * On cgroup v2 the pids controller is enabled down to the namespace's
 * cgroup first.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../../../shared/errors.js';
import { SANDBOX_MAX_PROCESSES } from '../limits.js';

const ROOT = '/sys/fs/cgroup';

/** The cgroup directory holding the container's pids.max, or undefined where there is no pids controller. */
export function pidsCgroup(namespace: string, id: string): string | undefined {
  if (existsSync(join(ROOT, 'pids'))) return join(ROOT, 'pids', namespace, id);
  if (existsSync(join(ROOT, 'cgroup.controllers'))) return join(ROOT, namespace, id);
  return undefined;
}

/** Makes the container's cgroup with its process limit; the reason when it cannot. */
export function limitProcesses(namespace: string, id: string): string | undefined {
  const dir = pidsCgroup(namespace, id);
  if (dir === undefined) return 'no pids cgroup controller';
  try {
    if (!dir.startsWith(join(ROOT, 'pids'))) {
      // cgroup v2: a child's pids.max exists only where its parent enables the controller.
      for (const parent of [ROOT, join(ROOT, namespace)]) {
        mkdirSync(parent, { recursive: true });
        const control = join(parent, 'cgroup.subtree_control');
        if (!readFileSync(control, 'utf8').split(/\s+/).includes('pids'))
          writeFileSync(control, '+pids');
      }
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'pids.max'), String(SANDBOX_MAX_PROCESSES));
    return undefined;
  } catch (err) {
    return `cannot limit processes in ${dir}: ${errorMessage(err)}`;
  }
}

/** Removes the cgroup if runc left it (it is empty once the container is gone). Never throws. */
export function removePidsCgroup(namespace: string, id: string): void {
  const dir = pidsCgroup(namespace, id);
  if (dir === undefined) return;
  try {
    rmdirSync(dir);
  } catch {
    // Gone already, or still busy: runc removes it with the container.
  }
}

/** Whether containers of `namespace` can be given a process limit here: the reason when not. */
export function probeProcessLimit(namespace: string): string | undefined {
  const probe = `baton-probe-${process.pid}`;
  const why = limitProcesses(namespace, probe);
  removePidsCgroup(namespace, probe);
  return why;
}

/** The process limit as the worker's isolation line says it. */
export function processLimitNote(why: string | undefined): string {
  return why === undefined ? `at most ${SANDBOX_MAX_PROCESSES} processes` : 'no process limit';
}

/**
 * What the containerd runtime asks of containerd, one `ctr` command per
 * step: images (present, or pulled once), containers (run detached with
 * their limits, labels, network namespace and logger; killed; deleted with
 * their snapshot), and the lists a worker needs to find what it left behind
 * or missed. containerd's gRPC API would serve the same calls; see
 * docs/ARCHITECTURE.md for why it is `ctr`.
 */
import type { Logger } from '../../../shared/logger.js';
import { SandboxStartError, errorMessage } from '../../../shared/errors.js';
import { commandFailure, ctr, type ContainerdTarget } from './ctr.js';

export interface ContainerRun {
  id: string;
  /** A full image reference. */
  ref: string;
  /** containerd's runtime (shim) name, e.g. io.containerd.runc.v2. */
  runtime: string;
  labels: Record<string, string>;
  /**
   * The network namespace the container joins; without one it gets a new
   * one of its own (which a container in a user namespace needs: see
   * UserRange).
   */
  netnsPath?: string;
  /** Host ids its root and users are mapped to (a user namespace); the image's user as is without. */
  users?: UserRange;
  /** Size of its private /tmp (tmpfs); the rest of its filesystem is read-only. */
  tmpMib: number;
  /** Where ctr writes the task's process id. */
  pidFile: string;
  memoryMib: number;
  cpuMilli: number;
  /** Where its output goes (see container-logs.ts). */
  logUri: string;
  env: Record<string, string>;
  args: string[];
}

/**
 * A user namespace mapping ids 0..size-1 inside the container to
 * first..first+size-1 on the host. containerd makes one copy of an image's
 * files owned by the mapped ids per image and range (committed as
 * `PARENT-FIRST-FIRST`), which later containers start from. runc cannot
 * mount /sys in such a container if it joins a network namespace made
 * outside its user namespace, so it makes its own and the network is
 * attached after start.
 */
export interface UserRange {
  first: number;
  size: number;
}

export class ContainerdClient {
  readonly #target: ContainerdTarget;
  readonly #log: Logger;
  /** Images known to be present, by reference: the pull (or look) under way or done. */
  readonly #images = new Map<string, Promise<number>>();
  /**
   * The first start of each image in a user namespace, by reference: it
   * makes the image's remapped copy, which two at once would both try to.
   */
  readonly #remapped = new Map<string, Promise<unknown>>();

  constructor(target: ContainerdTarget, logger: Logger) {
    this.#target = target;
    this.#log = logger;
  }

  /** The server's version; rejects when containerd cannot be reached. */
  async version(): Promise<string> {
    return (await this.#ctr(['version'])).match(/Server:[\s\S]*?Version:\s*(\S+)/)?.[1] ?? '?';
  }

  /**
   * Makes sure containerd has the image, pulling it once if not; resolves
   * the time the pull took. SandboxStartError when it can be neither found
   * nor pulled.
   */
  ensureImage(ref: string): Promise<number> {
    let known = this.#images.get(ref);
    if (known === undefined) {
      known = (async () => {
        const present = (await this.#ctr(['images', 'ls', '-q', `name==${ref}`])).trim() !== '';
        if (present) return 0;
        const t0 = performance.now();
        try {
          await this.#ctr(['images', 'pull', ref]);
        } catch (err) {
          throw new SandboxStartError(
            `image ${ref} is not in containerd (namespace ${this.#target.namespace}) and could not be pulled: ${errorMessage(err)}; import a local image with \`baton image import FILE.tar\``,
          );
        }
        return performance.now() - t0;
      })();
      this.#images.set(ref, known);
      known.catch(() => this.#images.delete(ref));
    }
    return known;
  }

  /** The image may have been removed since it was last seen: look again next time. */
  forgetImage(ref: string): void {
    this.#images.delete(ref);
    for (const key of this.#remapped.keys())
      if (key.startsWith(`${ref} `)) this.#remapped.delete(key);
  }

  /** Starts the container's task, detached. Rejects with ctr's reason. */
  async run(c: ContainerRun): Promise<void> {
    if (c.users === undefined) return this.#run(c);
    const key = `${c.ref} ${c.users.first}`;
    const first = this.#remapped.get(key);
    if (first === undefined) {
      const run = this.#runRemapped(c).then(() => this.#pinBase(c.id));
      this.#remapped.set(key, run);
      // A failed first start made no copy: the next one makes it.
      run.catch(() => {
        if (this.#remapped.get(key) === run) this.#remapped.delete(key);
      });
      return run;
    }
    return (await first.then(
      () => true,
      () => false,
    ))
      ? this.#runRemapped(c)
      : this.run(c);
  }

  /**
   * A start in a user namespace. One that finds another start making the
   * image's copy for its range (in another process, or after containerd
   * collected it) waits and tries again.
   */
  async #runRemapped(c: ContainerRun): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#run(c);
      } catch (err) {
        if (!/-remap.*already exists/.test(errorMessage(err)) || attempt >= 300) throw err;
        await this.#ctr(['containers', 'delete', c.id]).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /**
   * Marks the image's copy for the range (the parent of the container's
   * snapshot) a garbage-collection root: containerd would otherwise collect
   * it with the last container that used it, and the next cold start of the
   * image would copy its files again. Best effort.
   */
  async #pinBase(id: string): Promise<void> {
    try {
      const info = JSON.parse(await this.#ctr(['snapshots', 'info', id])) as { Parent?: string };
      if (info.Parent !== undefined)
        await this.#ctr(['snapshots', 'label', info.Parent, 'containerd.io/gc.root=baton']);
    } catch (err) {
      this.#log.warn(
        { sandbox: id, err: errorMessage(err) },
        "cannot keep the image's remapped copy",
      );
    }
  }

  async #run(c: ContainerRun): Promise<void> {
    const map = (u: UserRange) => `0:${u.first}:${u.size}`;
    await this.#ctr([
      'run',
      '--detach',
      '--runtime',
      c.runtime,
      ...Object.entries(c.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      ...(c.netnsPath === undefined ? [] : ['--with-ns', `network:${c.netnsPath}`]),
      ...(c.users === undefined ? [] : ['--uidmap', map(c.users), '--gidmap', map(c.users)]),
      '--read-only',
      '--mount',
      `type=tmpfs,src=tmpfs,dst=/tmp,options=nosuid:nodev:size=${c.tmpMib}m:mode=1777`,
      '--pid-file',
      c.pidFile,
      '--memory-limit',
      String(c.memoryMib * 1024 * 1024),
      '--cpu-period',
      '100000',
      '--cpu-quota',
      String(c.cpuMilli * 100),
      '--log-uri',
      c.logUri,
      ...Object.entries(c.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      c.ref,
      c.id,
      ...c.args,
    ]);
  }

  /** Signals the container's task; a task that is gone is not an error. */
  async kill(id: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    await this.#ctr(['tasks', 'kill', '--signal', signal, id]).catch(() => undefined);
  }

  /** Deletes the task and the container with its snapshot; what is already gone is skipped. */
  async remove(id: string): Promise<void> {
    await this.#ctr(['tasks', 'delete', '--force', id]).catch(() => undefined);
    await this.#ctr(['containers', 'delete', id]).catch((err: unknown) => {
      if (commandFailure(err) !== 'not-found')
        this.#log.warn({ sandbox: id, err: errorMessage(err) }, 'cannot delete container');
    });
  }

  /** Containers whose label `key` is `value`, with all their labels. */
  async labelled(
    key: string,
    value: string,
  ): Promise<Array<{ id: string; labels: Record<string, string> }>> {
    const ids = (await this.#ctr(['containers', 'ls', '-q', `labels."${key}"==${value}`]))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    return Promise.all(
      ids.map(async (id) => ({
        id,
        labels: await this.#ctr(['containers', 'info', id]).then(
          (info) => (JSON.parse(info) as { Labels?: Record<string, string> }).Labels ?? {},
          (): Record<string, string> => ({}),
        ),
      })),
    );
  }

  /** Ids of the containers whose task runs now. */
  async runningTasks(): Promise<Set<string>> {
    return new Set(
      (await this.#ctr(['tasks', 'ls']))
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .filter((cols) => cols[2] === 'RUNNING')
        .map((cols) => cols[0]!),
    );
  }

  #ctr(args: string[]): Promise<string> {
    return ctr(this.#target, args);
  }
}

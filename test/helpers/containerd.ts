/**
 * containerd for tests: a private containerd (state and socket under a
 * temporary directory, ended by PID), and small OCI images built here from
 * Debian's busybox-static and imported with `baton image import`.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ctr, type ContainerdTarget } from '../../src/worker/runtimes/containerd/ctr.js';
import { onPath } from '../../src/shared/path-lookup.js';

const BUSYBOX = '/bin/busybox';
const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin'];
const FIXTURES = new URL('../fixtures/containerd/', import.meta.url);

/** Why this host cannot run the containerd runtime's tests, or undefined when it can. */
export const containerdUnsupported: string | undefined = (() => {
  if (process.platform !== 'linux') return 'containerd sandboxes need Linux';
  if (process.getuid?.() !== 0) return 'containerd sandboxes need root (network namespaces, CNI)';
  for (const c of ['containerd', 'ctr', 'runc', 'ip', 'iptables', 'tar'])
    if (!onPath(c)) return `${c} is not installed (.ci/run installs it)`;
  if (!CNI_DIRS.some((d) => existsSync(join(d, 'portmap'))))
    return 'the CNI plugins are not installed (Debian: containernetworking-plugins)';
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (Debian: busybox-static)`;
  return undefined;
})();

export interface TestContainerd extends ContainerdTarget {
  dir: string;
  stop(): Promise<void>;
}

/** Starts a containerd of the test's own; `stop` ends it by PID and removes its state. */
export async function startContainerd(namespace = 'baton-test'): Promise<TestContainerd> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-containerd-'));
  // As /var/lib/containerd and /run/containerd are: a container's remapped root passes through.
  chmodSync(dir, 0o711);
  const address = join(dir, 'containerd.sock');
  writeFileSync(
    join(dir, 'config.toml'),
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('containerd', ['--config', join(dir, 'config.toml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const target = { address, namespace };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited at start: ${stderr}`);
    try {
      await ctr(target, ['version']);
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`containerd did not answer in 20 s: ${String(err)}`, { cause: err });
      }
      await sleep(50);
    }
  }
  return {
    ...target,
    dir,
    async stop() {
      // Containers a failed test left behind: their shims outlive containerd otherwise.
      const leftovers = await ctr(target, ['containers', 'ls', '-q']).catch(() => '');
      for (const id of leftovers.split('\n').filter((l) => l.trim() !== '')) {
        await ctr(target, ['tasks', 'delete', '--force', id]).catch(() => undefined);
        await ctr(target, ['containers', 'delete', id]).catch(() => undefined);
      }
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      // A container a failed test left behind keeps its rootfs mounted under dir.
      for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
        const mountPoint = line.split(' ')[1];
        if (mountPoint?.startsWith(`${dir}/`) === true)
          execFileSync('umount', ['--lazy', mountPoint], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ImageOptions {
  /** Full reference, e.g. baton.test/workload:1 */
  ref: string;
  cmd: string[];
  env?: string[];
}

/**
 * Builds an OCI image archive (oci-layout, index.json, blobs) of one layer:
 * busybox-static with its applets, busybox httpd's www root with the test
 * workload as /cgi-bin/index.cgi, and a start script. Returns the .tar path.
 */
export function buildTestImage(dir: string, o: ImageOptions): string {
  const work = mkdtempSync(join(dir, 'image-'));
  const rootfs = join(work, 'rootfs');
  for (const d of ['bin', 'tmp', 'www/cgi-bin', 'proc', 'sys', 'dev', 'etc'])
    mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin/busybox'));
  for (const applet of ['sh', 'usleep', 'kill', 'head', 'tr', 'cat', 'hostname', 'sleep'])
    symlinkSync('busybox', join(rootfs, 'bin', applet));
  copyFileSync(new URL('workload.cgi', FIXTURES), join(rootfs, 'www/cgi-bin/index.cgi'));
  copyFileSync(new URL('start.sh', FIXTURES), join(rootfs, 'bin/start.sh'));
  execFileSync('chmod', [
    '0755',
    join(rootfs, 'www/cgi-bin/index.cgi'),
    join(rootfs, 'bin/start.sh'),
  ]);
  execFileSync('chmod', ['1777', join(rootfs, 'tmp')]);

  const layout = join(work, 'layout');
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  const blob = (path: string, mediaType: string) => {
    const bytes = readFileSync(path);
    const digest = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(layout, 'blobs/sha256', digest), bytes);
    return { mediaType, digest: `sha256:${digest}`, size: statSync(path).size };
  };
  const json = (name: string, value: unknown, mediaType: string) => {
    writeFileSync(join(work, name), JSON.stringify(value));
    return blob(join(work, name), mediaType);
  };
  execFileSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', join(work, 'layer.tar'), '.']);
  const layer = blob(join(work, 'layer.tar'), 'application/vnd.oci.image.layer.v1.tar');
  const config = json(
    'config.json',
    {
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      config: { Cmd: o.cmd, Env: ['PATH=/bin', ...(o.env ?? [])] },
      rootfs: { type: 'layers', diff_ids: [layer.digest] },
    },
    'application/vnd.oci.image.config.v1+json',
  );
  const manifest = json(
    'manifest.json',
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers: [layer],
    },
    'application/vnd.oci.image.manifest.v1+json',
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': o.ref } }],
    }),
  );
  const tar = join(dir, `${o.ref.replace(/[^a-z0-9]+/gi, '-')}.tar`);
  execFileSync('tar', ['-C', layout, '-cf', tar, '.']);
  rmSync(work, { recursive: true, force: true });
  return tar;
}

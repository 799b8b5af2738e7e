/**
 * `baton image import|ls|rm`: OCI images for the containerd runtime, in the
 * containerd namespace its workers use. Images are per machine: import an
 * image on every worker machine that may run it (or let containerd pull it
 * from a registry the workers reach).
 */
import { existsSync } from 'node:fs';
import { InvalidConfigError, UnavailableError, errorMessage } from '../shared/errors.js';
import { formatHelp, parseFlags, type FlagSpecs } from '../shared/options.js';
import {
  DEFAULT_CONTAINERD_ADDRESS,
  DEFAULT_CONTAINERD_NAMESPACE,
  ctr,
  type ContainerdTarget,
} from './runtimes/containerd/ctr.js';

const FLAGS: FlagSpecs = {
  'containerd-address': {
    type: 'string',
    description: "containerd's socket",
    defaultText: DEFAULT_CONTAINERD_ADDRESS,
    valueName: 'PATH',
  },
  'containerd-namespace': {
    type: 'string',
    description: "containerd namespace (the workers' --containerd-namespace)",
    defaultText: DEFAULT_CONTAINERD_NAMESPACE,
    valueName: 'NS',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

const USAGE = 'baton image import FILE.tar... | ls | rm REF...';
const SUMMARY =
  "Manage the containerd runtime's OCI images on this machine: import archives (docker save or OCI layout), list, remove.";

export async function runImage(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, FLAGS, true);
  const [verb, ...args] = flags.positionals;
  if (flags.values.help === true) {
    process.stdout.write(formatHelp(USAGE, SUMMARY, FLAGS));
    return;
  }
  if (verb === undefined)
    throw new InvalidConfigError(`expected import, ls or rm; usage: ${USAGE}`);
  const target: ContainerdTarget = {
    address:
      (flags.values['containerd-address'] as string | undefined) ?? DEFAULT_CONTAINERD_ADDRESS,
    namespace:
      (flags.values['containerd-namespace'] as string | undefined) ?? DEFAULT_CONTAINERD_NAMESPACE,
  };
  if (!existsSync(target.address))
    throw new UnavailableError(
      `containerd at ${target.address}: no socket there (is containerd running?)`,
    );
  const run = (ctrArgs: string[]) =>
    ctr(target, ctrArgs).catch((err: unknown) => {
      throw new UnavailableError(`containerd at ${target.address}: ${errorMessage(err)}`);
    });
  switch (verb) {
    case 'import': {
      if (args.length === 0)
        throw new InvalidConfigError(`import: expected FILE.tar; usage: ${USAGE}`);
      for (const file of args) {
        if (!existsSync(file)) throw new InvalidConfigError(`import: ${file}: no such file`);
        const out = await run(['images', 'import', file]);
        const refs = [...out.matchAll(/unpacking (\S+) \(/g)].map((m) => m[1]!);
        if (refs.length === 0)
          throw new InvalidConfigError(
            `import: ${file} names no image (an OCI archive needs an org.opencontainers.image.ref.name annotation)`,
          );
        for (const ref of refs) process.stdout.write(`imported ${ref}\n`);
      }
      return;
    }
    case 'ls': {
      if (args.length > 0) throw new InvalidConfigError(`ls: takes no arguments; usage: ${USAGE}`);
      const out = await run(['images', 'ls', '-q']);
      process.stdout.write(out.trim() === '' ? 'no images\n' : out);
      return;
    }
    case 'rm': {
      if (args.length === 0) throw new InvalidConfigError(`rm: expected REF; usage: ${USAGE}`);
      await run(['images', 'rm', ...args]);
      for (const ref of args) process.stdout.write(`removed ${ref}\n`);
      return;
    }
    default:
      throw new InvalidConfigError(`unknown image command "${verb}"; usage: ${USAGE}`);
  }
}

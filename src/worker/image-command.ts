/**
 * `baton image import|ls|rm`: OCI images for the containerd runtime, in the
 * containerd namespace its workers use. Images are per machine: import an
 * image on every worker machine that may run it (or let containerd pull it
 * from a registry the workers reach).
 */
import { existsSync } from 'node:fs';
import { InvalidConfigError, UnavailableError, errorMessage } from '../shared/errors.js';
import { readCommand } from '../shared/options.js';
import { HELP_OPTION } from '../shared/option-specs.js';
import { CONTAINERD_OPTIONS } from './runtimes/containerd/containerd-options.js';
import { ctr, type ContainerdTarget } from './runtimes/containerd/ctr.js';

/** containerd's socket and namespace, as the containerd runtime's workers take them. */
const OPTIONS = {
  'containerd-address': CONTAINERD_OPTIONS['containerd-address'],
  'containerd-namespace': CONTAINERD_OPTIONS['containerd-namespace'],
  ...HELP_OPTION,
};

const USAGE = 'baton image import FILE.tar... | ls | rm REF...';
const SUMMARY =
  "Manage the containerd runtime's OCI images on this machine: import archives (docker save or OCI layout), list, remove.";

export async function runImage(argv: string[]): Promise<void> {
  const command = readCommand(argv, OPTIONS, USAGE, SUMMARY, 'any');
  if (command === undefined) return;
  const [verb, ...args] = command.args;
  if (verb === undefined)
    throw new InvalidConfigError(`expected import, ls or rm; usage: ${USAGE}`);
  const target: ContainerdTarget = {
    address: command.options['containerd-address'],
    namespace: command.options['containerd-namespace'],
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

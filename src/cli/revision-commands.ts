/**
 * `baton revisions NAME`, `baton traffic NAME REV=PCT...`, `baton rollback
 * NAME [REV]`: a function's revisions (each `baton deploy` of a changed spec
 * makes one) and how its traffic is shared among them.
 */
import { InvalidConfigError } from '../shared/errors.js';
import { JSON_OPTION } from './function-commands.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';
import { formatTable } from './table.js';

export async function runRevisions(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton revisions NAME [--json]',
    "List a function's revisions: image, share of traffic, ready sandboxes.",
    JSON_OPTION,
    true,
  );
  if (command === undefined) return;
  const { revisions } = await new ControlPlaneClient(command.options.cp).revisions(
    command.args[0]!,
  );
  if (command.options.json) {
    process.stdout.write(`${JSON.stringify(revisions, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    formatTable(
      ['REVISION', 'TRAFFIC', 'SANDBOXES', 'IMAGE'],
      revisions.map((r) => [r.revision, `${r.weight}%`, r.sandboxes, r.image]),
    ),
  );
}

export async function runTraffic(argv: string[]): Promise<void> {
  const usage =
    'baton traffic NAME REV=PERCENT [REV=PERCENT...]   (e.g. baton traffic f 3=90 4=10)';
  const command = parseCommand(
    argv,
    usage,
    "Share a function's traffic among its revisions (percentages summing to 100); a revision that gains traffic gets a ready sandbox first.",
    {},
    'any',
  );
  if (command === undefined) return;
  const [name, ...pairs] = command.args;
  if (name === undefined || pairs.length === 0)
    throw new InvalidConfigError(`expected NAME and REV=PERCENT pairs; usage: ${usage}`);
  const split: Record<string, number> = {};
  for (const pair of pairs) {
    const m = /^(?:rev)?(\d+)=(\d+)%?$/.exec(pair);
    if (m === null) throw new InvalidConfigError(`"${pair}" is not REV=PERCENT; usage: ${usage}`);
    split[m[1]!] = Number(m[2]);
  }
  const reply = await new ControlPlaneClient(command.options.cp).setTraffic(name, split);
  process.stdout.write(
    `${name}: ${reply.split.map((s) => `revision ${s.revision} ${s.weight}%`).join(', ')}\n`,
  );
}

export async function runRollback(argv: string[]): Promise<void> {
  const usage = 'baton rollback NAME [REV]';
  const command = parseCommand(
    argv,
    usage,
    'Send all traffic to an earlier revision (default: the one before the newest that takes traffic), once it has a ready sandbox.',
    {},
    'any',
  );
  if (command === undefined) return;
  const [name, rev, ...extra] = command.args;
  if (name === undefined || extra.length > 0) throw new InvalidConfigError(`usage: ${usage}`);
  if (rev !== undefined && !/^[1-9]\d*$/.test(rev))
    throw new InvalidConfigError(`"${rev}" is not a revision number; usage: ${usage}`);
  const client = new ControlPlaneClient(command.options.cp);
  let target = rev === undefined ? undefined : Number(rev);
  if (target === undefined) {
    const { revisions } = await client.revisions(name);
    const serving = Math.max(...revisions.filter((r) => r.weight > 0).map((r) => r.revision));
    target = revisions
      .map((r) => r.revision)
      .filter((r) => r < serving)
      .at(-1);
    if (target === undefined)
      throw new InvalidConfigError(`${name} has no revision before ${serving} to roll back to`);
  }
  await client.setTraffic(name, { [target]: 100 });
  process.stdout.write(`${name}: all traffic to revision ${target}\n`);
}

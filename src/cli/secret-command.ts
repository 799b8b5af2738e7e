/**
 * `baton secret set|ls|rm`: secrets that functions name in their spec
 * (`baton deploy --secret NAME`) and get as environment variables. A value
 * is read from stdin, a file or an environment variable, never from the
 * command line (which other users can see in the process list).
 */
import { readFileSync } from 'node:fs';
import { InvalidConfigError } from '../shared/errors.js';
import { booleanOption, stringOption } from '../shared/option-specs.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';
import { formatTable } from './table.js';

const USAGE = 'baton secret set NAME [--from-file FILE | --from-env VAR] | ls [--json] | rm NAME';
const SUMMARY =
  'Secrets: set one (its value from stdin, --from-file or --from-env, exactly as given), list them (names, never values), remove one no function uses.';

const OPTIONS = {
  'from-file': stringOption(undefined, 'set: read the value from this file', 'FILE'),
  'from-env': stringOption(undefined, 'set: take the value of this environment variable', 'VAR'),
  json: booleanOption('ls: print the raw JSON'),
};

export async function runSecret(argv: string[]): Promise<void> {
  const command = parseCommand(argv, USAGE, SUMMARY, OPTIONS, 'any');
  if (command === undefined) return;
  const { options } = command;
  const [verb, ...args] = command.args;
  const client = new ControlPlaneClient(options.cp);
  const one = () => {
    if (args.length !== 1)
      throw new InvalidConfigError(`${verb}: expected one NAME; usage: ${USAGE}`);
    return args[0]!;
  };
  switch (verb) {
    case 'set': {
      const name = one();
      const info = await client.putSecret(name, await readValue(options));
      const users =
        info.usedBy.length === 0
          ? ''
          : ` (used by ${info.usedBy.join(', ')}: their new sandboxes get it)`;
      process.stdout.write(`set ${info.name}${users}\n`);
      return;
    }
    case 'ls': {
      if (args.length > 0) throw new InvalidConfigError(`ls: takes no arguments; usage: ${USAGE}`);
      const { secrets } = await client.listSecrets();
      if (options.json) process.stdout.write(`${JSON.stringify(secrets, null, 2)}\n`);
      else if (secrets.length === 0) process.stdout.write('no secrets\n');
      else
        process.stdout.write(
          formatTable(
            ['NAME', 'UPDATED', 'USED BY'],
            secrets.map((s) => [s.name, s.updatedAt, s.usedBy.join(',') || '-']),
          ),
        );
      return;
    }
    case 'rm': {
      const reply = await client.deleteSecret(one());
      process.stdout.write(`deleted ${reply.deleted}\n`);
      return;
    }
    default:
      throw new InvalidConfigError(
        `${verb === undefined ? 'expected' : `unknown subcommand "${verb}"; expected`} set, ls or rm; usage: ${USAGE}`,
      );
  }
}

async function readValue(o: {
  'from-file'?: string | undefined;
  'from-env'?: string | undefined;
}): Promise<string> {
  if (o['from-file'] !== undefined && o['from-env'] !== undefined)
    throw new InvalidConfigError('set: give --from-file or --from-env, not both');
  if (o['from-file'] !== undefined) {
    try {
      return readFileSync(o['from-file'], 'utf8');
    } catch (err) {
      throw new InvalidConfigError(
        `--from-file: cannot read ${o['from-file']}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  }
  if (o['from-env'] !== undefined) {
    const value = process.env[o['from-env']];
    if (value === undefined)
      throw new InvalidConfigError(`--from-env: ${o['from-env']} is not set`);
    return value;
  }
  if (process.stdin.isTTY)
    throw new InvalidConfigError(
      'set: give the value on stdin (printf %s VALUE | baton secret set NAME), --from-file FILE or --from-env VAR',
    );
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * `baton result ID [--wait]` and `baton dlq ls|retry|rm`: asynchronous
 * invocations (`baton invoke NAME --async`) as the control plane keeps them.
 */
import { BatonError, InvalidConfigError } from '../shared/errors.js';
import { booleanOption, intOption } from '../shared/option-specs.js';
import type { z } from 'zod';
import type { invocationViewSchema } from '../shared/http-api.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';
import { formatTable } from './table.js';

type InvocationView = z.output<typeof invocationViewSchema>;

const FINAL = new Set(['succeeded', 'failed', 'dead-lettered']);

export async function runResult(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton result ID [--wait] [--json]',
    "Show an asynchronous invocation: its state, and once it succeeded, the function's answer (body on stdout).",
    {
      wait: booleanOption('wait until it is final (succeeded, failed or dead-lettered)'),
      'timeout-s': intOption(300, '--wait: longest wait', 'S', 1),
      json: booleanOption('print the raw JSON'),
    },
    'any',
  );
  if (command === undefined) return;
  const { options } = command;
  const [id, ...extra] = command.args;
  if (id === undefined || extra.length > 0)
    throw new InvalidConfigError('expected one invocation ID (what baton invoke --async printed)');
  const client = new ControlPlaneClient(options.cp);
  const end = Date.now() + options['timeout-s'] * 1000;
  let inv = await client.invocation(id);
  while (options.wait && !FINAL.has(inv.state)) {
    if (Date.now() > end)
      throw new BatonError(
        `invocation ${id} is still ${inv.state} after ${options['timeout-s']} s`,
      );
    await new Promise((r) => setTimeout(r, 200));
    inv = await client.invocation(id);
  }
  if (options.json) {
    process.stdout.write(`${JSON.stringify(inv, null, 2)}\n`);
    return;
  }
  process.stderr.write(
    `${inv.id}: ${inv.state} after ${inv.attempts} attempt(s)${inv.status === null ? '' : `, HTTP ${inv.status}`}${inv.error === null ? '' : ` (${inv.error})`}\n`,
  );
  if (inv.state === 'succeeded' && inv.bodyBase64 !== null)
    process.stdout.write(Buffer.from(inv.bodyBase64, 'base64'));
  if (inv.state === 'failed' || inv.state === 'dead-lettered') process.exitCode = 1;
}

export async function runDlq(argv: string[]): Promise<void> {
  const usage = 'baton dlq ls [--json] | retry ID | rm ID';
  const command = parseCommand(
    argv,
    usage,
    'Dead-lettered asynchronous invocations (every attempt failed): list them, run one again, or remove it.',
    { json: booleanOption('ls: print the raw JSON') },
    'any',
  );
  if (command === undefined) return;
  const [verb, ...args] = command.args;
  const client = new ControlPlaneClient(command.options.cp);
  const one = () => {
    if (args.length !== 1)
      throw new InvalidConfigError(`${verb}: expected one ID; usage: ${usage}`);
    return args[0]!;
  };
  switch (verb) {
    case 'ls': {
      const { invocations } = await client.deadLettered();
      if (command.options.json) process.stdout.write(`${JSON.stringify(invocations, null, 2)}\n`);
      else if (invocations.length === 0) process.stdout.write('no dead-lettered invocations\n');
      else process.stdout.write(table(invocations));
      return;
    }
    case 'retry': {
      const inv = await client.retryDeadLettered(one());
      process.stdout.write(`${inv.id}: queued again\n`);
      return;
    }
    case 'rm': {
      const reply = await client.removeDeadLettered(one());
      process.stdout.write(`deleted ${reply.deleted}\n`);
      return;
    }
    default:
      throw new InvalidConfigError(
        `${verb === undefined ? 'expected' : `unknown subcommand "${verb}"; expected`} ls, retry or rm; usage: ${usage}`,
      );
  }
}

function table(invocations: InvocationView[]): string {
  return formatTable(
    ['ID', 'FUNCTION', 'ATTEMPTS', 'FINISHED', 'ERROR'],
    invocations.map((i) => [i.id, i.function, i.attempts, i.finishedAt ?? '-', i.error ?? '-']),
  );
}

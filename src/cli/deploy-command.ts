/** `baton deploy NAME --image IMAGE`: registers a function through the JSON API. */
import { isAbsolute, resolve } from 'node:path';
import { InvalidConfigError } from '../shared/errors.js';
import { booleanOption, intOption, listOption, stringOption } from '../shared/option-specs.js';
import { FUNCTION_DEFAULTS, type FunctionSpecInput } from '../shared/function-spec.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';

/** A field of the registration: a whole number, checked against its bounds by the control plane. */
const field = (description: string, valueName: string, defaultText: string) =>
  intOption(undefined, description, valueName, 0, Number.MAX_SAFE_INTEGER, defaultText);

const DEPLOY_OPTIONS = {
  image: stringOption(
    undefined,
    'built-in image (hello, empty, trace, simulated-trace) or a path',
    'IMAGE',
  ),
  port: field('port the function listens on in its sandbox', 'PORT', `${FUNCTION_DEFAULTS.port}`),
  concurrency: field(
    'requests one sandbox serves at once (0 = unlimited)',
    'N',
    `${FUNCTION_DEFAULTS.concurrency}`,
  ),
  min: field('fewest sandboxes kept', 'N', `${FUNCTION_DEFAULTS.minScale}`),
  max: field('most sandboxes', 'N', 'unbounded'),
  cpu: field('milli-CPU per sandbox', 'MILLI', `${FUNCTION_DEFAULTS.cpuMilli}`),
  memory: field('MiB per sandbox', 'MIB', `${FUNCTION_DEFAULTS.memoryMib}`),
  env: listOption('environment variable for the function', 'K=V'),
  secret: listOption(
    'a secret the function gets as an environment variable of its name (baton secret set NAME)',
    'NAME',
  ),
  'cold-start-timeout-ms': field(
    'longest wait for a sandbox before 503',
    'MS',
    `${FUNCTION_DEFAULTS.coldStartTimeoutMs}`,
  ),
  'timeout-ms': field(
    'longest one invocation may run before 504 (its sandbox is then replaced)',
    'MS',
    `${FUNCTION_DEFAULTS.timeoutMs}`,
  ),
  sweep: booleanOption(
    "Dirigent's cold-start sweep preset (short windows; upper bound 1 unless --max is given)",
  ),
};

export async function runDeploy(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton deploy NAME --image IMAGE [options]',
    'Register a function (idempotent for the same spec).',
    DEPLOY_OPTIONS,
    true,
  );
  if (command === undefined) return;
  const o = command.options;
  const name = command.args[0]!;
  if (o.image === undefined) throw new InvalidConfigError('--image: is required');
  // A relative path means relative to where the user is, not to the worker.
  const image = o.image;
  const isPath =
    image.startsWith('./') || image.startsWith('../') || image === '.' || isAbsolute(image);
  const fields = {
    image: isPath ? resolve(image) : image,
    port: o.port,
    concurrency: o.concurrency,
    minScale: o.min,
    maxScale: o.max,
    cpuMilli: o.cpu,
    memoryMib: o.memory,
    coldStartTimeoutMs: o['cold-start-timeout-ms'],
    timeoutMs: o['timeout-ms'],
    ...(o.sweep ? { coldStartSweep: true } : {}),
    ...(o.env.length > 0 ? { env: parseEnv(o.env) } : {}),
    ...(o.secret.length > 0 ? { secrets: o.secret } : {}),
  };
  // Unset fields are left out: the control plane applies its defaults.
  const spec = Object.fromEntries(
    Object.entries(fields).filter(([, v]) => v !== undefined),
  ) as FunctionSpecInput;
  const reply = await new ControlPlaneClient(o.cp).putFunction(name, spec);
  const dp = reply.invoke.split(';')[0] ?? '127.0.0.1:8080';
  process.stdout.write(
    (reply.outcome === 'updated'
      ? `rolled out ${name} revision ${reply.revision} (${spec.image}): it takes all traffic (baton revisions ${name}; baton rollback ${name})\n`
      : reply.outcome === 'unchanged'
        ? `${name} is unchanged (revision ${reply.revision ?? 1})\n`
        : `deployed ${name} (${spec.image})\n`) +
      `invoke: baton invoke ${name}    or    curl -H 'Host: ${name}' http://${dp}/\n`,
  );
}

function parseEnv(pairs: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new InvalidConfigError(`--env: "${kv}" is not NAME=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

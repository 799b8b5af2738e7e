/** `baton deploy NAME --image IMAGE`: registers a function through the JSON API. */
import { isAbsolute, resolve } from 'node:path';
import { InvalidConfigError } from '../shared/errors.js';
import type { FlagSpecs } from '../shared/options.js';
import type { FunctionSpecInput } from '../shared/function-spec.js';
import { ControlPlaneClient, intFlag, parseCommand } from './cp-client.js';

const DEPLOY_FLAGS: FlagSpecs = {
  image: {
    type: 'string',
    description: 'built-in image (hello, empty, trace, simulated-trace) or a path',
    valueName: 'IMAGE',
  },
  port: {
    type: 'string',
    description: 'port the function listens on in its sandbox',
    defaultText: '80',
    valueName: 'PORT',
  },
  concurrency: {
    type: 'string',
    description: 'requests one sandbox serves at once (0 = unlimited)',
    defaultText: '1',
    valueName: 'N',
  },
  min: { type: 'string', description: 'fewest sandboxes kept', defaultText: '0', valueName: 'N' },
  max: { type: 'string', description: 'most sandboxes', defaultText: 'unbounded', valueName: 'N' },
  cpu: {
    type: 'string',
    description: 'milli-CPU per sandbox',
    defaultText: '1',
    valueName: 'MILLI',
  },
  memory: { type: 'string', description: 'MiB per sandbox', defaultText: '1', valueName: 'MIB' },
  env: {
    type: 'string',
    multiple: true,
    description: 'environment variable for the function (repeatable)',
    valueName: 'K=V',
  },
  'cold-start-timeout-ms': {
    type: 'string',
    description: 'longest wait for a sandbox before 503',
    defaultText: '60000',
    valueName: 'MS',
  },
  'timeout-ms': {
    type: 'string',
    description: 'longest one invocation may run before 504 (its sandbox is then replaced)',
    defaultText: '300000',
    valueName: 'MS',
  },
  sweep: {
    type: 'boolean',
    description: "Dirigent's cold-start sweep preset (upper bound 1, short windows)",
  },
};

export async function runDeploy(argv: string[]): Promise<void> {
  const flags = parseCommand(
    argv,
    'baton deploy NAME --image IMAGE [options]',
    'Register a function (idempotent for the same spec).',
    DEPLOY_FLAGS,
    1,
  );
  if (flags === undefined) return;
  const v = flags.values;
  const name = flags.positionals[0]!;
  const image = v.image;
  if (typeof image !== 'string' || image === '')
    throw new InvalidConfigError('--image: is required');
  // A relative path means relative to where the user is, not to the worker.
  const isPath =
    image.startsWith('./') || image.startsWith('../') || image === '.' || isAbsolute(image);
  const spec: FunctionSpecInput = { image: isPath ? resolve(image) : image };
  const set = <K extends keyof FunctionSpecInput>(
    key: K,
    value: FunctionSpecInput[K] | undefined,
  ) => {
    if (value !== undefined) spec[key] = value;
  };
  set('port', intFlag('port')(v.port));
  set('concurrency', intFlag('concurrency')(v.concurrency));
  set('minScale', intFlag('min')(v.min));
  set('maxScale', intFlag('max')(v.max));
  set('cpuMilli', intFlag('cpu')(v.cpu));
  set('memoryMib', intFlag('memory')(v.memory));
  set('coldStartTimeoutMs', intFlag('cold-start-timeout-ms')(v['cold-start-timeout-ms']));
  set('timeoutMs', intFlag('timeout-ms')(v['timeout-ms']));
  if (v.sweep === true) spec.coldStartSweep = true;
  const env = (v.env as string[] | undefined) ?? [];
  if (env.length > 0) {
    spec.env = {};
    for (const kv of env) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new InvalidConfigError(`--env: "${kv}" is not NAME=VALUE`);
      spec.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  const reply = await new ControlPlaneClient(flags).putFunction(name, spec);
  const dp = reply.invoke.split(';')[0] ?? '127.0.0.1:8080';
  process.stdout.write(
    `deployed ${name} (${spec.image})\n` +
      `invoke: baton invoke ${name}    or    curl -H 'Host: ${name}' http://${dp}/\n`,
  );
}

/** `baton invoke NAME`: one request through a data plane, its answer's body on stdout. */
import { readFileSync } from 'node:fs';
import {
  BatonError,
  InvalidConfigError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import type { FlagSpecs } from '../shared/options.js';
import { ControlPlaneClient, http, parseCommand } from './cp-client.js';

const INVOKE_FLAGS: FlagSpecs = {
  data: {
    type: 'string',
    short: 'd',
    description: 'request body; @FILE reads a file',
    valueName: 'DATA',
  },
  header: {
    type: 'string',
    short: 'H',
    multiple: true,
    description: 'request header (repeatable)',
    valueName: 'K:V',
  },
  method: {
    type: 'string',
    short: 'X',
    description: 'HTTP method',
    defaultText: 'GET, or POST with --data',
    valueName: 'METHOD',
  },
  path: { type: 'string', description: 'request path', defaultText: '/', valueName: 'PATH' },
  dp: {
    type: 'string',
    description: "data plane's address ($BATON_DP)",
    defaultText: 'from the control plane',
    valueName: 'URL',
  },
  verbose: {
    type: 'boolean',
    short: 'v',
    description: 'print status, latency and response headers to stderr',
  },
};

export async function runInvoke(argv: string[]): Promise<void> {
  const flags = parseCommand(
    argv,
    'baton invoke NAME [options]',
    'Invoke a function through a data plane and print its response body.',
    INVOKE_FLAGS,
    1,
  );
  if (flags === undefined) return;
  const v = flags.values;
  const name = flags.positionals[0]!;
  let dp = (v.dp as string | undefined) ?? process.env.BATON_DP;
  if (dp === undefined) {
    const status = await new ControlPlaneClient(flags).status();
    const first = status.dataPlanes[0];
    if (first === undefined)
      throw new UnavailableError('no data plane is registered with the control plane');
    dp = `http://${first.proxy}`;
  }
  if (!/^https?:\/\//.test(dp)) dp = `http://${dp}`;
  const headers: Record<string, string> = { host: name };
  for (const h of (v.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new InvalidConfigError(`--header: "${h}" is not NAME:VALUE`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  let body: string | undefined;
  if (typeof v.data === 'string') {
    body = v.data.startsWith('@') ? readBodyFile(v.data.slice(1)) : v.data;
  }
  const method = (
    (v.method as string | undefined) ?? (body === undefined ? 'GET' : 'POST')
  ).toUpperCase();
  const path = (v.path as string | undefined) ?? '/';
  const url = `${dp.replace(/\/+$/, '')}${path.startsWith('/') ? path : `/${path}`}`;
  const reply = await http(url, method, 'the data plane', body, headers);
  if (v.verbose === true) {
    process.stderr.write(`HTTP ${reply.status} in ${reply.ms.toFixed(1)} ms\n`);
    for (const [k, val] of Object.entries(reply.headers))
      process.stderr.write(`${k}: ${String(val)}\n`);
  }
  if (reply.status >= 400) {
    throw new BatonError(
      `${name} answered ${reply.status}: ${reply.text.trim().split('\n')[0] ?? ''}`,
    );
  }
  process.stdout.write(
    reply.text.endsWith('\n') || reply.text === '' ? reply.text : `${reply.text}\n`,
  );
}

function readBodyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(`--data: cannot read ${path}: ${errorMessage(err)}`);
  }
}

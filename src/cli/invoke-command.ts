/** `baton invoke NAME`: one request through a data plane, its answer's body on stdout. */
import { readFileSync } from 'node:fs';
import {
  BatonError,
  InvalidConfigError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import { booleanOption, listOption, stringOption } from '../shared/option-specs.js';
import { ASYNC_HEADER, CALLBACK_HEADER } from '../shared/async-invocation.js';
import { ControlPlaneClient, http, parseCommand } from './cp-client.js';

const INVOKE_OPTIONS = {
  data: { ...stringOption(undefined, 'request body; @FILE reads a file', 'DATA'), short: 'd' },
  header: listOption('request header', 'K:V', 'H'),
  method: {
    ...stringOption(undefined, 'HTTP method', 'METHOD'),
    short: 'X',
    defaultText: 'GET, or POST with --data',
  },
  path: stringOption('/', 'request path', 'PATH'),
  dp: {
    ...stringOption(undefined, "data plane's address ($BATON_DP)", 'URL'),
    defaultText: 'from the control plane',
  },
  verbose: booleanOption('print status, latency and response headers to stderr', 'v'),
  async: booleanOption(
    'invoke asynchronously: print the invocation id once it is durable (baton result ID)',
  ),
  'callback-url': stringOption(
    undefined,
    '--async: where the result is POSTed (JSON) once final',
    'URL',
  ),
};

export async function runInvoke(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton invoke NAME [options]',
    'Invoke a function through a data plane and print its response body.',
    INVOKE_OPTIONS,
    true,
  );
  if (command === undefined) return;
  const v = command.options;
  const name = command.args[0]!;
  let dp = v.dp ?? process.env.BATON_DP;
  if (dp === undefined) {
    const status = await new ControlPlaneClient(v.cp).status();
    const first = status.dataPlanes[0];
    if (first === undefined)
      throw new UnavailableError('no data plane is registered with the control plane');
    dp = `${first.tls === true ? 'https' : 'http'}://${first.proxy}`;
  }
  if (!/^https?:\/\//.test(dp)) dp = `http://${dp}`;
  // Over TLS the Host header would be checked against the certificate: route by path instead.
  const tls = dp.startsWith('https://');
  const headers: Record<string, string> = tls ? {} : { host: name };
  for (const h of v.header) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new InvalidConfigError(`--header: "${h}" is not NAME:VALUE`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  let body: string | undefined;
  if (v.data !== undefined) {
    body = v.data.startsWith('@') ? readBodyFile(v.data.slice(1)) : v.data;
  }
  const method = (v.method ?? (body === undefined ? 'GET' : 'POST')).toUpperCase();
  const path = v.path;
  const route = tls ? `/function/${encodeURIComponent(name)}` : '';
  const url = `${dp.replace(/\/+$/, '')}${route}${path.startsWith('/') ? path : `/${path}`}`;
  if (v.async) headers[ASYNC_HEADER] = '1';
  if (v['callback-url'] !== undefined) {
    if (!v.async) throw new InvalidConfigError('--callback-url: only with --async');
    headers[CALLBACK_HEADER] = v['callback-url'];
  }
  const reply = await http(url, method, 'the data plane', body, headers);
  if (v.async && reply.status === 202) {
    const { id } = JSON.parse(reply.text) as { id: string };
    process.stdout.write(`${id}\n`);
    return;
  }
  if (v.verbose) {
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

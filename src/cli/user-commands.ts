/**
 * Commands for people: deploy, invoke, ls, rm, logs, status. They talk to the
 * control plane's JSON API and to a data plane; every failure is one line
 * and a non-zero exit.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { request, type Dispatcher } from 'undici';
import { z } from 'zod';
import {
  BatonError,
  InvalidConfigError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import { formatHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/options.js';
import type { FunctionSpecInput } from '../shared/function-spec.js';
import { supervisedDaemonSchema } from '../shared/supervision.js';
import { formatTable } from './table.js';

const DEFAULT_CP_URL = 'http://127.0.0.1:9091';

const CP_FLAG: FlagSpecs = {
  cp: {
    type: 'string',
    description: "control plane's HTTP address ($BATON_CP)",
    defaultText: DEFAULT_CP_URL,
    valueName: 'URL',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

/** Parses flags; prints help and returns undefined when asked for it. */
function parse(
  argv: string[],
  usage: string,
  summary: string,
  specs: FlagSpecs,
  positionals: number,
): ParsedFlags | undefined {
  const all = { ...specs, ...CP_FLAG };
  const flags = parseFlags(argv, all, positionals > 0);
  if (flags.values.help === true) {
    process.stdout.write(formatHelp(usage, summary, all));
    return undefined;
  }
  if (flags.positionals.length !== positionals) {
    throw new InvalidConfigError(
      `expected ${positionals === 1 ? 'a function name' : 'no arguments'}; usage: ${usage}`,
    );
  }
  return flags;
}

function cpUrl(flags: ParsedFlags): string {
  const v = (flags.values.cp as string | undefined) ?? process.env.BATON_CP ?? DEFAULT_CP_URL;
  return v.replace(/\/+$/, '');
}

interface HttpReply {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  text: string;
  ms: number;
}

async function http(
  url: string,
  method: Dispatcher.HttpMethod,
  what: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  const t0 = performance.now();
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  } catch (err) {
    throw new UnavailableError(
      `cannot reach ${what} at ${new URL(url).origin} (${errorMessage(err)}); is 'baton up' running?`,
    );
  }
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, ms: performance.now() - t0 };
}

/** Calls the control plane's JSON API; a non-2xx answer becomes an error with the server's reason. */
async function api<T>(
  flags: ParsedFlags,
  method: Dispatcher.HttpMethod,
  path: string,
  body?: unknown,
): Promise<T> {
  const reply = await http(
    `${cpUrl(flags)}${path}`,
    method,
    'the control plane',
    body === undefined ? undefined : JSON.stringify(body),
    body === undefined ? {} : { 'content-type': 'application/json' },
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(reply.text);
  } catch {
    throw new BatonError(
      `control plane answered ${reply.status}: ${reply.text.trim().slice(0, 200)}`,
    );
  }
  if (reply.status >= 300) {
    throw new BatonError(
      (parsed as { message?: string }).message ?? `control plane answered ${reply.status}`,
    );
  }
  return parsed as T;
}

interface FunctionStatusJson {
  spec: {
    name: string;
    image: string;
    concurrency: number;
    minScale: number;
    maxScale: number | null;
  };
  sandboxes: number;
  creating: number;
  inflight: number;
  queued: number;
  lastFailure: { message: string } | null;
}

// ---- deploy -----------------------------------------------------------------------

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

const intFlag = (name: string) => (v: unknown) => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v))
    throw new InvalidConfigError(`--${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
};

export async function runDeploy(argv: string[]): Promise<void> {
  const flags = parse(
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
  const reply = await api<{ invoke: string }>(
    flags,
    'PUT',
    `/v1/functions/${encodeURIComponent(name)}`,
    spec,
  );
  const dp = reply.invoke.split(';')[0] ?? '127.0.0.1:8080';
  process.stdout.write(
    `deployed ${name} (${spec.image})\n` +
      `invoke: baton invoke ${name}    or    curl -H 'Host: ${name}' http://${dp}/\n`,
  );
}

// ---- invoke -------------------------------------------------------------------

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
  const flags = parse(
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
    const status = await api<{ dataPlanes: Array<{ proxy: string }> }>(flags, 'GET', '/v1/status');
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

// ---- ls, rm, status -----------------------------------------------------------------

const JSON_FLAG: FlagSpecs = { json: { type: 'boolean', description: 'print the raw JSON' } };

export async function runLs(argv: string[]): Promise<void> {
  const flags = parse(
    argv,
    'baton ls [options]',
    'List functions with their sandboxes and load.',
    JSON_FLAG,
    0,
  );
  if (flags === undefined) return;
  const { functions } = await api<{ functions: FunctionStatusJson[] }>(
    flags,
    'GET',
    '/v1/functions',
  );
  if (flags.values.json === true) {
    process.stdout.write(`${JSON.stringify(functions, null, 2)}\n`);
    return;
  }
  if (functions.length === 0) {
    process.stdout.write("no functions registered (try 'baton deploy hello --image hello')\n");
    return;
  }
  functions.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  process.stdout.write(
    formatTable(
      ['NAME', 'IMAGE', 'SANDBOXES', 'IN-FLIGHT', 'QUEUED'],
      functions.map((f) => [
        f.spec.name,
        f.spec.image,
        f.creating > 0 ? `${f.sandboxes} (+${f.creating} starting)` : f.sandboxes,
        f.inflight - f.queued,
        f.queued,
      ]),
    ),
  );
}

const RM_FLAGS: FlagSpecs = {
  'drain-timeout-ms': {
    type: 'string',
    description: 'longest wait for in-flight requests',
    defaultText: '60000',
    valueName: 'MS',
  },
};

export async function runRm(argv: string[]): Promise<void> {
  const flags = parse(
    argv,
    'baton rm NAME [options]',
    'Delete a function: drain its requests, then delete its sandboxes.',
    RM_FLAGS,
    1,
  );
  if (flags === undefined) return;
  const name = flags.positionals[0]!;
  const t = intFlag('drain-timeout-ms')(flags.values['drain-timeout-ms']);
  const q = t === undefined ? '' : `?drain_timeout_ms=${t}`;
  const reply = await api<{ remaining: number }>(
    flags,
    'DELETE',
    `/v1/functions/${encodeURIComponent(name)}${q}`,
  );
  process.stdout.write(
    reply.remaining === 0
      ? `deleted ${name}\n`
      : `deleted ${name} (${reply.remaining} requests still running when the drain timed out)\n`,
  );
}

const LOGS_FLAGS: FlagSpecs = {
  sandbox: { type: 'string', description: 'only this sandbox', valueName: 'ID' },
};

interface LogsReply {
  sandboxes: Array<{ id: string; worker: string; state: string; text: string }>;
  unreachable: Array<{ worker: string; reason: string }>;
}

export async function runLogs(argv: string[]): Promise<void> {
  const flags = parse(
    argv,
    'baton logs NAME [options]',
    "Show what a function's sandboxes wrote (stdout and stderr, or an isolate's console), running and recently exited, newest last.",
    LOGS_FLAGS,
    1,
  );
  if (flags === undefined) return;
  const name = flags.positionals[0]!;
  const sandbox = flags.values.sandbox;
  const q = typeof sandbox === 'string' ? `?sandbox=${encodeURIComponent(sandbox)}` : '';
  const reply = await api<LogsReply>(
    flags,
    'GET',
    `/v1/functions/${encodeURIComponent(name)}/logs${q}`,
  );
  for (const s of reply.sandboxes) {
    const text = s.text.length === 0 || s.text.endsWith('\n') ? s.text : `${s.text}\n`;
    process.stdout.write(
      `==> sandbox ${s.id} on ${s.worker} (${s.state}) <==\n${text || '(no output)\n'}`,
    );
  }
  if (reply.sandboxes.length === 0)
    process.stdout.write(`no sandbox of ${name} has written anything yet\n`);
  for (const u of reply.unreachable)
    process.stderr.write(`baton logs: worker ${u.worker} did not answer: ${u.reason}\n`);
}

const statusSchema = z.object({
  uptimeS: z.number(),
  ready: z.boolean().optional(),
  store: z
    .object({ kind: z.string(), ok: z.boolean(), error: z.string().nullable(), sinceS: z.number() })
    .optional(),
  functions: z.number(),
  sandboxes: z.object({ ready: z.number(), creating: z.number(), draining: z.number() }),
  workers: z.array(
    z
      .object({
        id: z.string(),
        address: z.string(),
        runtime: z.string(),
        sandboxes: z.number(),
        cpuPercent: z.number(),
        memoryPercent: z.number(),
        lastHeartbeatMsAgo: z.number(),
      })
      .passthrough(),
  ),
  dataPlanes: z.array(
    z.object({ id: z.string(), proxy: z.string(), lastHeartbeatMsAgo: z.number() }).passthrough(),
  ),
  supervised: z.array(supervisedDaemonSchema).optional(),
});

export async function runStatus(argv: string[]): Promise<void> {
  const flags = parse(
    argv,
    'baton status [options]',
    'Show the workers, data planes and sandboxes of the cluster.',
    JSON_FLAG,
    0,
  );
  if (flags === undefined) return;
  const raw = await api<unknown>(flags, 'GET', '/v1/status');
  if (flags.values.json === true) {
    process.stdout.write(`${JSON.stringify(raw, null, 2)}\n`);
    return;
  }
  const s = statusSchema.parse(raw);
  const sb = s.sandboxes;
  let out =
    `control plane ${cpUrl(flags)}: up ${s.uptimeS} s, ${s.functions} functions, ` +
    `sandboxes ${sb.ready} ready, ${sb.creating} starting, ${sb.draining} draining\n`;
  if (s.store !== undefined)
    out += s.store.ok
      ? `store ${s.store.kind}: ok\n`
      : `store ${s.store.kind}: DOWN for ${s.store.sinceS} s (${s.store.error ?? '?'}); registrations are refused\n`;
  if (s.ready === false) out += 'state not loaded from the store yet\n';
  out += '\n';
  out += `workers (${s.workers.length})\n`;
  out +=
    s.workers.length === 0
      ? '  none registered\n'
      : formatTable(
          ['ID', 'ADDRESS', 'RUNTIME', 'SANDBOXES', 'CPU%', 'MEM%', 'LAST BEAT'],
          s.workers.map((w) => [
            w.id,
            w.address,
            w.runtime,
            w.sandboxes,
            w.cpuPercent.toFixed(1),
            w.memoryPercent.toFixed(1),
            `${(w.lastHeartbeatMsAgo / 1000).toFixed(1)} s ago`,
          ]),
        );
  out += `\ndata planes (${s.dataPlanes.length})\n`;
  out +=
    s.dataPlanes.length === 0
      ? '  none registered\n'
      : formatTable(
          ['ID', 'INVOKE AT', 'LAST BEAT'],
          s.dataPlanes.map((d) => [
            d.id,
            `http://${d.proxy}`,
            `${(d.lastHeartbeatMsAgo / 1000).toFixed(1)} s ago`,
          ]),
        );
  if (s.supervised !== undefined) {
    out += `\ndaemons (baton up)\n`;
    out += formatTable(
      ['NAME', 'STATE', 'PID', 'RESTARTS', 'LAST EXIT'],
      s.supervised.map((d) => [d.name, d.state, d.pid ?? '-', d.restarts, d.lastExit ?? '-']),
    );
  }
  process.stdout.write(out);
}

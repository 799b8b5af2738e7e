/**
 * The CLI's side of the control plane's JSON API: one method per call, each
 * answer parsed with the contract's schema (shared/http-api.ts), each error
 * one line with the server's code kept. Also the flags every user command
 * takes (`--cp`, `--help`) and a plain HTTP call for data planes.
 */
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import {
  BatonError,
  InvalidConfigError,
  RemoteError,
  UnavailableError,
  errorMessage,
} from '../shared/errors.js';
import { formatHelp, parseFlags, type FlagSpecs, type ParsedFlags } from '../shared/options.js';
import type { FunctionSpecInput } from '../shared/function-spec.js';
import {
  apiErrorSchema,
  clusterStatusSchema,
  deleteReplySchema,
  functionListSchema,
  logsReplySchema,
  putFunctionReplySchema,
} from '../shared/http-api.js';

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

/** Parses a user command's flags; prints help and returns undefined when asked for it. */
export function parseCommand(
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
  if (flags.positionals.length !== positionals)
    throw new InvalidConfigError(
      `expected ${positionals === 1 ? 'a function name' : 'no arguments'}; usage: ${usage}`,
    );
  return flags;
}

/** A flag's value as a non-negative integer, or undefined when not given. */
export const intFlag = (name: string) => (v: unknown) => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v))
    throw new InvalidConfigError(`--${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
};

export interface HttpReply {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  text: string;
  ms: number;
}

/** One HTTP call; UnavailableError naming `what` when it cannot be reached. */
export async function http(
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

export class ControlPlaneClient {
  readonly url: string;

  constructor(flags: ParsedFlags) {
    const v = (flags.values.cp as string | undefined) ?? process.env.BATON_CP ?? DEFAULT_CP_URL;
    this.url = v.replace(/\/+$/, '');
  }

  putFunction(name: string, spec: FunctionSpecInput) {
    return this.#call(
      putFunctionReplySchema,
      'PUT',
      `/v1/functions/${encodeURIComponent(name)}`,
      spec,
    );
  }

  listFunctions() {
    return this.#call(functionListSchema, 'GET', '/v1/functions');
  }

  deleteFunction(name: string, drainTimeoutMs: number | undefined) {
    const q = drainTimeoutMs === undefined ? '' : `?drain_timeout_ms=${drainTimeoutMs}`;
    return this.#call(deleteReplySchema, 'DELETE', `/v1/functions/${encodeURIComponent(name)}${q}`);
  }

  logs(name: string, sandbox: string | undefined) {
    const q = sandbox === undefined ? '' : `?sandbox=${encodeURIComponent(sandbox)}`;
    return this.#call(logsReplySchema, 'GET', `/v1/functions/${encodeURIComponent(name)}/logs${q}`);
  }

  status() {
    return this.#call(clusterStatusSchema, 'GET', '/v1/status');
  }

  /** A non-2xx answer becomes an error with the server's code and reason. */
  async #call<S extends z.ZodType>(
    schema: S,
    method: Dispatcher.HttpMethod,
    path: string,
    body?: unknown,
  ): Promise<z.output<S>> {
    const reply = await http(
      `${this.url}${path}`,
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
      const err = apiErrorSchema.safeParse(parsed);
      if (!err.success) throw new BatonError(`control plane answered ${reply.status}`);
      throw new RemoteError(err.data.code, err.data.message, reply.status);
    }
    const answer = schema.safeParse(parsed);
    if (!answer.success)
      throw new BatonError(
        `control plane answered ${method} ${path} with something this baton does not read (a different version?)`,
      );
    return answer.data;
  }
}

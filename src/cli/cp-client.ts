/**
 * The CLI's side of the control plane's JSON API: one method per call, each
 * answer parsed with the contract's schema (shared/http-api.ts), each error
 * one line with the server's code kept; $BATON_TOKEN, when set, goes with
 * every call. Also the flags every user command takes (`--cp`, `--help`) and
 * a plain HTTP call for data planes.
 */
import { API_TOKEN_ENV, bearer } from '../shared/secrets.js';
import { request, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { BatonError, RemoteError, UnavailableError, errorMessage } from '../shared/errors.js';
import { readCommand, type Command } from '../shared/options.js';
import { HELP_OPTION, stringOption, type OptionSpecs } from '../shared/option-specs.js';
import type { FunctionSpecInput } from '../shared/function-spec.js';
import {
  apiErrorSchema,
  clusterStatusSchema,
  deleteReplySchema,
  functionListSchema,
  logsReplySchema,
  putFunctionReplySchema,
  invocationViewSchema,
  dlqListSchema,
  revisionListSchema,
  trafficReplySchema,
  secretDeleteReplySchema,
  secretInfoSchema,
  secretListSchema,
} from '../shared/http-api.js';

export const DEFAULT_CP_URL = 'http://127.0.0.1:9091';
export const DEFAULT_DP_URL = 'http://127.0.0.1:8080';

/** The options every user command takes: `--cp`, `--help`. */
const CP_OPTIONS = {
  cp: {
    ...stringOption(undefined, "control plane's HTTP address ($BATON_CP)", 'URL'),
    defaultText: DEFAULT_CP_URL,
  },
  ...HELP_OPTION,
} satisfies OptionSpecs;

/**
 * Reads a user command's options (with `--cp`) and its function name, if it
 * takes one; prints help and returns undefined when asked for it.
 */
export function parseCommand<T extends OptionSpecs>(
  argv: string[],
  usage: string,
  summary: string,
  specs: T,
  takesName: boolean | 'any',
): Command<T & typeof CP_OPTIONS> | undefined {
  return readCommand(
    argv,
    { ...specs, ...CP_OPTIONS },
    usage,
    summary,
    takesName === 'any' ? 'any' : takesName ? 1 : 0,
    'a function name',
  );
}

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

  /** `cp`: the --cp option; $BATON_CP or the local default when not given. */
  constructor(cp: string | undefined) {
    this.url = (cp ?? process.env.BATON_CP ?? DEFAULT_CP_URL).replace(/\/+$/, '');
  }

  putFunction(name: string, spec: FunctionSpecInput) {
    return this.#call(
      putFunctionReplySchema,
      'PUT',
      `/v1/functions/${encodeURIComponent(name)}`,
      spec,
    );
  }

  getFunction(name: string) {
    return this.#call(putFunctionReplySchema, 'GET', `/v1/functions/${encodeURIComponent(name)}`);
  }

  listFunctions() {
    return this.#call(functionListSchema, 'GET', '/v1/functions');
  }

  deleteFunction(name: string, drainTimeoutMs: number | undefined) {
    const q = drainTimeoutMs === undefined ? '' : `?drain_timeout_ms=${drainTimeoutMs}`;
    return this.#call(deleteReplySchema, 'DELETE', `/v1/functions/${encodeURIComponent(name)}${q}`);
  }

  logs(name: string, sandbox: string | undefined, sinceMs?: number) {
    const params = new URLSearchParams();
    if (sandbox !== undefined) params.set('sandbox', sandbox);
    if (sinceMs !== undefined) params.set('since', String(Math.floor(sinceMs)));
    const q = params.size === 0 ? '' : `?${params.toString()}`;
    return this.#call(logsReplySchema, 'GET', `/v1/functions/${encodeURIComponent(name)}/logs${q}`);
  }

  status() {
    return this.#call(clusterStatusSchema, 'GET', '/v1/status');
  }

  revisions(name: string) {
    return this.#call(
      revisionListSchema,
      'GET',
      `/v1/functions/${encodeURIComponent(name)}/revisions`,
    );
  }

  setTraffic(name: string, split: Record<string, number>) {
    return this.#call(
      trafficReplySchema,
      'PUT',
      `/v1/functions/${encodeURIComponent(name)}/traffic`,
      {
        split,
      },
    );
  }

  invocation(id: string) {
    return this.#call(invocationViewSchema, 'GET', `/v1/invocations/${encodeURIComponent(id)}`);
  }

  deadLettered() {
    return this.#call(dlqListSchema, 'GET', '/v1/dlq');
  }

  retryDeadLettered(id: string) {
    return this.#call(invocationViewSchema, 'POST', `/v1/dlq/${encodeURIComponent(id)}/retry`);
  }

  removeDeadLettered(id: string) {
    return this.#call(secretDeleteReplySchema, 'DELETE', `/v1/dlq/${encodeURIComponent(id)}`);
  }

  putSecret(name: string, value: string) {
    return this.#call(secretInfoSchema, 'PUT', `/v1/secrets/${encodeURIComponent(name)}`, {
      value,
    });
  }

  listSecrets() {
    return this.#call(secretListSchema, 'GET', '/v1/secrets');
  }

  deleteSecret(name: string) {
    return this.#call(secretDeleteReplySchema, 'DELETE', `/v1/secrets/${encodeURIComponent(name)}`);
  }

  /** A non-2xx answer becomes an error with the server's code and reason. */
  async #call<S extends z.ZodType>(
    schema: S,
    method: Dispatcher.HttpMethod,
    path: string,
    body?: unknown,
  ): Promise<z.output<S>> {
    const token = process.env[API_TOKEN_ENV]?.trim() || undefined;
    const reply = await http(
      `${this.url}${path}`,
      method,
      'the control plane',
      body === undefined ? undefined : JSON.stringify(body),
      {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        // The API asks its token where it listens beyond loopback.
        ...(token === undefined ? {} : { authorization: bearer(token) }),
      },
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
      throw new RemoteError(err.data.code, err.data.message);
    }
    const answer = schema.safeParse(parsed);
    if (!answer.success)
      throw new BatonError(
        `control plane answered ${method} ${path} with something this baton does not read (a different version?)`,
      );
    return answer.data;
  }
}

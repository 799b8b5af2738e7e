/**
 * An RPC transport within one process, for unit tests that run a control
 * plane, data planes and workers side by side without sockets. Calls keep
 * the wire's meaning: requests and answers are copied (as JSON) and
 * validated against the contract on both sides, handler errors reach the
 * caller as RemoteError with their code, a call to an address nobody serves
 * is UnavailableError, and every call has its deadline.
 */
import {
  ClosedError,
  DeadlineExceededError,
  InvalidArgumentError,
  RemoteError,
  UnavailableError,
  errorCode,
  errorMessage,
} from '../shared/errors.js';
import { describeZodError } from '../shared/function-spec.js';
import { DEFAULT_RPC_DEADLINE_MS, type RpcConnectionOptions } from './client.js';
import {
  callAbortController,
  type AdmitCall,
  type CallContext,
  type CallOptions,
  type Method,
  type ServiceClient,
  type ServiceContract,
  type ServiceHandlers,
} from './contract.js';
import type { RpcChannel, RpcListener, RpcListenerOptions, RpcTransport } from './transport.js';

type Handler = (...args: unknown[]) => Promise<unknown>;

interface Route {
  method: Method;
  handler: Handler;
  admit: AdmitCall | undefined;
}

export class InProcessTransport implements RpcTransport {
  /** Listening servers by `host:port`, each a table of `/service/method` routes. */
  readonly #servers = new Map<string, Map<string, Route>>();
  #nextPort = 40_000;

  createListener(_logger?: unknown, options?: RpcListenerOptions): RpcListener {
    const routes = new Map<string, Route>();
    let address: string | undefined;
    const listener: RpcListener = {
      mount: <C extends ServiceContract>(contract: C, handlers: ServiceHandlers<C>) => {
        for (const [name, method] of Object.entries(contract.methods)) {
          const path = `/${contract.service}/${name}`;
          if (routes.has(path)) throw new Error(`rpc path ${path} is mounted twice`);
          const handler = (handlers as unknown as Record<string, Handler>)[name];
          if (handler === undefined) throw new Error(`no handler for ${path}`);
          routes.set(path, { method, handler: handler.bind(handlers), admit: options?.admit });
        }
        return listener;
      },
      listen: (port, host) => {
        const bound = port === 0 ? this.#nextPort++ : port;
        address = `${host}:${bound}`;
        if (this.#servers.has(address))
          return Promise.reject(new Error(`listen EADDRINUSE: ${address}`));
        this.#servers.set(address, routes);
        return Promise.resolve({ address: host, family: 'IPv4', port: bound });
      },
      close: () => {
        if (address !== undefined && this.#servers.get(address) === routes)
          this.#servers.delete(address);
        return Promise.resolve();
      },
    };
    return listener;
  }

  connect(options: RpcConnectionOptions): RpcChannel {
    const address = `${options.host}:${options.port}`;
    const peer = options.peerName ?? address;
    let closed = false;
    const route = (path: string): Route => {
      if (closed) throw new ClosedError(`connection to ${peer} is closed`);
      const found = this.#servers.get(address)?.get(path);
      if (found === undefined)
        throw new UnavailableError(`cannot reach ${peer}: nothing serves ${path}`);
      return found;
    };
    return {
      client: <C extends ServiceContract>(contract: C): ServiceClient<C> => {
        const out: Record<string, unknown> = {};
        for (const [name, method] of Object.entries(contract.methods)) {
          const path = `/${contract.service}/${name}`;
          out[name] =
            method.kind === 'unary'
              ? (req: unknown, o?: CallOptions) =>
                  call(path, method, o, (r, ctx) => r.handler(request(path, r, req), ctx)).then(
                    (res) => validate(method.response, res, path, peer),
                  )
              : (req: unknown, onItem: (item: unknown) => void, o?: CallOptions) =>
                  call(path, method, o, (r, ctx) =>
                    r.handler(
                      request(path, r, req),
                      (item: unknown) => onItem(validate(method.item, item, path, peer)),
                      ctx,
                    ),
                  ).then(() => undefined);
        }
        return out as ServiceClient<C>;
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };

    async function call(
      path: string,
      method: Method,
      o: CallOptions | undefined,
      run: (r: Route, ctx: CallContext) => Promise<unknown>,
    ): Promise<unknown> {
      const r = route(path);
      if (r.admit !== undefined) {
        const metadata = options.metadata?.() ?? {};
        try {
          r.admit((name) => metadata[name]);
        } catch (err) {
          throw new RemoteError(errorCode(err), errorMessage(err));
        }
      }
      const abort = callAbortController();
      const deadlineMs = o?.deadlineMs ?? method.deadlineMs ?? DEFAULT_RPC_DEADLINE_MS;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(
            new DeadlineExceededError(`${path} to ${peer}: no answer within ${deadlineMs} ms`),
          );
        }, deadlineMs);
      });
      o?.signal?.addEventListener('abort', () => abort.abort(), { once: true });
      try {
        const work = (async () => run(r, { signal: abort.signal, peer: 'in-process' }))();
        return await Promise.race([
          work.catch((err: unknown) => {
            throw new RemoteError(errorCode(err), errorMessage(err));
          }),
          late,
        ]);
      } finally {
        clearTimeout(timer);
      }
    }
  }
}

/** The request as the server sees it: a copy, validated against the contract. */
function request(path: string, r: Route, req: unknown): unknown {
  const parsed = r.method.request.safeParse(copy(req));
  if (!parsed.success) throw new InvalidArgumentError(`${path}: ${describeZodError(parsed.error)}`);
  return parsed.data;
}

function validate(schema: Method['request'], value: unknown, path: string, peer: string): unknown {
  const parsed = schema.safeParse(copy(value));
  if (!parsed.success)
    throw new RemoteError(
      'BATON_ERR_INTERNAL',
      `${path} from ${peer}: bad answer: ${describeZodError(parsed.error)}`,
    );
  return parsed.data;
}

function copy(value: unknown): unknown {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
}

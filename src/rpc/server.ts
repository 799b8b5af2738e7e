/**
 * Internal RPC server: HTTP/2 cleartext, `POST /<service>/<method>`, JSON
 * bodies. Several services can be mounted on one server. Requests are
 * validated against the contract; handler errors become `{code, message}`
 * with the error's HTTP status. Leaves out TLS and authentication (internal
 * network only; see docs/ARCHITECTURE.md).
 */
import {
  createServer,
  constants as h2,
  type Http2Server,
  type ServerHttp2Stream,
  type IncomingHttpHeaders,
  type Http2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import {
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  errorCode,
  errorMessage,
} from '../shared/errors.js';
import { httpStatusOf } from '../shared/http-status.js';
import { describeZodError } from '../shared/function-spec.js';
import {
  RPC_DEADLINE_HEADER,
  RPC_STREAM_ERROR_KEY,
  type AdmitCall,
  type CallContext,
  type Method,
  type ServiceContract,
  type ServiceHandlers,
} from './contract.js';

export const DEFAULT_RPC_MAX_BODY_BYTES = 64 * 1024 * 1024;

interface Route {
  method: Method;
  handler: (...args: never[]) => Promise<unknown>;
}

export interface RpcServerOptions {
  logger: Logger;
  maxBodyBytes?: number;
  /** Checks every call's metadata before its handler runs. */
  admit?: AdmitCall;
}

export class RpcServer implements AsyncDisposable {
  readonly #server: Http2Server;
  readonly #routes = new Map<string, Route>();
  readonly #sessions = new Set<Http2Session>();
  readonly #logger: Logger;
  readonly #maxBodyBytes: number;
  readonly #admit: AdmitCall | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: RpcServerOptions) {
    this.#logger = options.logger;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_RPC_MAX_BODY_BYTES;
    this.#admit = options.admit;
    this.#server = createServer({
      settings: { initialWindowSize: 4 * 1024 * 1024, maxConcurrentStreams: 10_000 },
    });
    this.#server.on('session', (session) => {
      session.on('error', () => undefined);
      // A peer that hung up at once leaves a destroyed session: nothing to set on it.
      if (session.destroyed) return;
      session.setLocalWindowSize(16 * 1024 * 1024);
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
    this.#server.on('stream', (stream, headers) => this.#onStream(stream, headers));
  }

  /** Mounts a service. Throws if one of its paths is already mounted. */
  mount<C extends ServiceContract>(contract: C, handlers: ServiceHandlers<C>): this {
    for (const [name, method] of Object.entries(contract.methods)) {
      const path = `/${contract.service}/${name}`;
      if (this.#routes.has(path)) throw new Error(`rpc path ${path} is mounted twice`);
      const handler = (handlers as Record<string, Route['handler']>)[name];
      if (handler === undefined) throw new Error(`no handler for ${path}`);
      this.#routes.set(path, { method, handler: handler.bind(handlers) });
    }
    return this;
  }

  /** Starts listening; resolves with the bound address. Port 0 picks a free port. */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, closes sessions (in-flight streams may finish). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const session of this.#sessions) session.close();
      setTimeout(() => {
        for (const session of this.#sessions) session.destroy();
      }, 1000).unref();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', () => undefined);
    const path = headers[':path'] ?? '';
    const route = this.#routes.get(path);
    if (route === undefined || headers[':method'] !== 'POST') {
      stream.resume();
      replyError(stream, new NotFoundError(`no rpc method ${String(headers[':method'])} ${path}`));
      return;
    }
    if (this.#admit !== undefined) {
      try {
        this.#admit((name) => {
          const v = headers[name];
          return Array.isArray(v) ? v[0] : v;
        });
      } catch (err) {
        stream.resume();
        replyError(stream, err);
        return;
      }
    }
    const controller = new AbortController();
    const deadline = Number(headers[RPC_DEADLINE_HEADER]);
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(deadline) && deadline > 0) {
      timer = setTimeout(() => controller.abort(new Error('deadline exceeded')), deadline);
    }
    stream.once('close', () => {
      if (timer !== undefined) clearTimeout(timer);
      if (!controller.signal.aborted) controller.abort(new Error('caller went away'));
    });
    const ctx: CallContext = {
      signal: controller.signal,
      peer: stream.session?.socket?.remoteAddress ?? '?',
    };

    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > this.#maxBodyBytes) {
        replyError(stream, new PayloadTooLargeError(`rpc body over ${this.#maxBodyBytes} bytes`));
        stream.close(h2.NGHTTP2_CANCEL);
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => {
      if (stream.headersSent) return;
      let body: unknown;
      try {
        body = JSON.parse(
          chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString(),
        );
      } catch {
        replyError(stream, new InvalidArgumentError(`${path}: body is not JSON`));
        return;
      }
      const parsed = route.method.request.safeParse(body);
      if (!parsed.success) {
        replyError(stream, new InvalidArgumentError(`${path}: ${describeZodError(parsed.error)}`));
        return;
      }
      if (route.method.kind === 'unary') this.#runUnary(stream, route, parsed.data, ctx, path);
      else this.#runStream(stream, route, parsed.data, ctx, path);
    });
  }

  #runUnary(
    stream: ServerHttp2Stream,
    route: Route,
    request: unknown,
    ctx: CallContext,
    path: string,
  ): void {
    const handler = route.handler as (req: unknown, ctx: CallContext) => Promise<unknown>;
    handler(request, ctx).then(
      (response) => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(response ?? {}));
      },
      (err: unknown) => this.#fail(stream, err, path),
    );
  }

  #runStream(
    stream: ServerHttp2Stream,
    route: Route,
    request: unknown,
    ctx: CallContext,
    path: string,
  ): void {
    const handler = route.handler as (
      req: unknown,
      emit: (item: unknown) => void,
      ctx: CallContext,
    ) => Promise<void>;
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    const emit = (item: unknown) => {
      if (!stream.destroyed && !stream.writableEnded) stream.write(JSON.stringify(item) + '\n');
    };
    handler(request, emit, ctx).then(
      () => {
        if (!stream.destroyed) stream.end();
      },
      (err: unknown) => {
        this.#logFailure(err, path);
        if (!stream.destroyed && !stream.writableEnded) {
          stream.end(
            JSON.stringify({
              [RPC_STREAM_ERROR_KEY]: { code: errorCode(err), message: errorMessage(err) },
            }) + '\n',
          );
        }
      },
    );
  }

  #fail(stream: ServerHttp2Stream, err: unknown, path: string): void {
    this.#logFailure(err, path);
    replyError(stream, err);
  }

  #logFailure(err: unknown, path: string): void {
    // A follower's refusal is how callers find the leader, not a failure.
    if (httpStatusOf(err) >= 500 && errorCode(err) !== 'BATON_ERR_NOT_LEADER') {
      this.#logger.warn(
        { path, code: errorCode(err), err: errorMessage(err) },
        'rpc handler failed',
      );
    }
  }
}

function replyError(stream: ServerHttp2Stream, err: unknown): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': httpStatusOf(err), 'content-type': 'application/json' });
  stream.end(JSON.stringify({ code: errorCode(err), message: errorMessage(err) }));
}

/**
 * One typed contract per internal service. A method is either unary (one
 * request, one response) or server-streaming (one request, a stream of items
 * sent as each becomes ready: used where a batch is sent at once but its
 * results finish at different times). Schemas are zod; the server validates
 * requests, the client validates responses.
 */
import { setMaxListeners } from 'node:events';
import type { z } from 'zod';

export interface UnaryMethod<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  readonly kind: 'unary';
  readonly request: Req;
  readonly response: Res;
  /** Default deadline for calls of this method. */
  readonly deadlineMs?: number;
}

export interface StreamMethod<
  Req extends z.ZodType = z.ZodType,
  Item extends z.ZodType = z.ZodType,
> {
  readonly kind: 'stream';
  readonly request: Req;
  readonly item: Item;
  readonly deadlineMs?: number;
}

export type Method = UnaryMethod | StreamMethod;

export interface ServiceContract<M extends Record<string, Method> = Record<string, Method>> {
  readonly service: string;
  readonly methods: M;
}

export function unary<Req extends z.ZodType, Res extends z.ZodType>(
  request: Req,
  response: Res,
  deadlineMs?: number,
): UnaryMethod<Req, Res> {
  return deadlineMs === undefined
    ? { kind: 'unary', request, response }
    : { kind: 'unary', request, response, deadlineMs };
}

export function stream<Req extends z.ZodType, Item extends z.ZodType>(
  request: Req,
  item: Item,
  deadlineMs?: number,
): StreamMethod<Req, Item> {
  return deadlineMs === undefined
    ? { kind: 'stream', request, item }
    : { kind: 'stream', request, item, deadlineMs };
}

export function defineService<M extends Record<string, Method>>(
  service: string,
  methods: M,
): ServiceContract<M> {
  return { service, methods };
}

export interface CallContext {
  /** Aborted when the caller goes away or its deadline passes; any number of listeners. */
  readonly signal: AbortSignal;
  /** Address of the peer, for logs. */
  readonly peer: string;
}

/**
 * The controller of one call's CallContext.signal. A batched call shares it
 * among all the work it starts (a worker's createSandboxes waits on it once
 * per sandbox), so it has no listener limit: Node's default of 10 warned of
 * a leak for every batch of 11 creations.
 */
export function callAbortController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** What a server implements for a contract. Handlers throw BatonErrors to reply with an error. */
export type ServiceHandlers<C extends ServiceContract> = {
  [K in keyof C['methods']]: C['methods'][K] extends UnaryMethod<infer Req, infer Res>
    ? (request: z.output<Req>, ctx: CallContext) => Promise<z.input<Res>>
    : C['methods'][K] extends StreamMethod<infer Req, infer Item>
      ? (
          request: z.output<Req>,
          emit: (item: z.input<Item>) => void,
          ctx: CallContext,
        ) => Promise<void>
      : never;
};

export interface CallOptions {
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** What a client offers for a contract. */
export type ServiceClient<C extends ServiceContract> = {
  [K in keyof C['methods']]: C['methods'][K] extends UnaryMethod<infer Req, infer Res>
    ? (request: z.input<Req>, options?: CallOptions) => Promise<z.output<Res>>
    : C['methods'][K] extends StreamMethod<infer Req, infer Item>
      ? (
          request: z.input<Req>,
          onItem: (item: z.output<Item>) => void,
          options?: CallOptions,
        ) => Promise<void>
      : never;
};

/** Headers a connection adds to every call (e.g. the control plane's epoch), lower-case names. */
export type CallMetadata = Readonly<Record<string, string>>;

/**
 * A server's check of each call's metadata before its handler runs: throws a
 * BatonError to refuse the call (answered with that error), returns to let it run.
 */
export type AdmitCall = (metadata: (name: string) => string | undefined) => void;

/**
 * How daemons serve and reach each other's RPC services. The daemons take a
 * transport and never name one: `tcpTransport` (the real one: JSON frames
 * over TCP, frames.ts) in production, `InProcessTransport` (in-process-transport.ts)
 * in unit tests that run daemons side by side without sockets.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from '../shared/logger.js';
import type { AdmitCall, ServiceClient, ServiceContract, ServiceHandlers } from './contract.js';
import { RpcConnection, type RpcConnectionOptions } from './client.js';
import { RpcServer } from './server.js';

export interface RpcListener {
  /** Mounts a service. Throws if one of its paths is already mounted. */
  mount<C extends ServiceContract>(contract: C, handlers: ServiceHandlers<C>): this;
  /** Starts serving; resolves with the bound address (port 0 picks one). */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Stops serving. Idempotent. */
  close(): Promise<void>;
}

export interface RpcChannel {
  /** Typed client for one contract over this channel. */
  client<C extends ServiceContract>(contract: C): ServiceClient<C>;
  /** Later calls reject with ClosedError. Idempotent. */
  close(): Promise<void>;
}

export interface RpcListenerOptions {
  /** Checks every call's metadata before its handler (see AdmitCall). */
  admit?: AdmitCall;
}

export interface RpcTransport {
  createListener(logger: Logger, options?: RpcListenerOptions): RpcListener;
  connect(options: RpcConnectionOptions): RpcChannel;
}

export const tcpTransport: RpcTransport = {
  createListener: (logger, options) =>
    new RpcServer({ logger, ...(options?.admit === undefined ? {} : { admit: options.admit }) }),
  connect: (options) => new RpcConnection(options),
};

/** The transport, with `metadata()` added to every call of every connection it makes. */
export function withCallMetadata(
  transport: RpcTransport,
  metadata: () => Record<string, string>,
): RpcTransport {
  return {
    createListener: (logger, options) => transport.createListener(logger, options),
    connect: (options) =>
      transport.connect({
        ...options,
        metadata: () => ({ ...options.metadata?.(), ...metadata() }),
      }),
  };
}

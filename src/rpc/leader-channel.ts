/**
 * A channel to whichever of several control-plane replicas leads. Calls go
 * to the replica that answered last; one that cannot be reached, or that
 * answers BATON_ERR_NOT_LEADER (it follows), sends the call on to the next,
 * round the list, until one answers or the call's deadline passes. Workers
 * and data planes use it for every call to the control plane, so they follow
 * the leader by themselves. With one address it is the plain connection.
 */
import type { Logger } from '../shared/logger.js';
import {
  ClosedError,
  DeadlineExceededError,
  RemoteError,
  UnavailableError,
} from '../shared/errors.js';
import { sleep } from '../shared/time.js';
import { DEFAULT_RPC_DEADLINE_MS } from './client.js';
import type { CallOptions, ServiceClient, ServiceContract } from './contract.js';
import type { RpcChannel, RpcTransport } from './transport.js';

/** Wait after every replica has refused, before going round again. */
const ROUND_PAUSE_MS = 50;

export interface Address {
  host: string;
  port: number;
}

export function connectToLeader(
  transport: RpcTransport,
  addresses: readonly Address[],
  logger: Logger,
): RpcChannel {
  if (addresses.length === 1)
    return transport.connect({ ...addresses[0]!, logger, peerName: 'control plane' });
  const channels = addresses.map((a) =>
    transport.connect({
      ...a,
      logger,
      peerName: `control plane ${a.host}:${a.port}`,
      failFast: true,
    }),
  );
  let current = 0;
  let closed = false;

  /** Runs `call` on the current replica, moving on while replicas refuse. */
  async function onLeader<T>(
    deadlineMs: number,
    call: (channel: RpcChannel, remainingMs: number) => Promise<T>,
  ): Promise<T> {
    const deadlineAt = Date.now() + deadlineMs;
    for (let tried = 0; ; tried++) {
      if (closed) throw new ClosedError('the connection to the control plane is closed');
      const at = current;
      const remaining = deadlineAt - Date.now();
      if (remaining <= 0)
        throw new DeadlineExceededError('no control-plane replica led before the deadline');
      try {
        return await call(channels[at]!, remaining);
      } catch (err) {
        if (!movesOn(err)) throw err;
        if (current === at) {
          current = (at + 1) % channels.length;
          logger.debug(
            { from: addresses[at], to: addresses[current] },
            'control plane replica does not lead; trying the next',
          );
        }
        if ((tried + 1) % channels.length === 0) await sleep(ROUND_PAUSE_MS);
      }
    }
  }

  return {
    client<C extends ServiceContract>(contract: C): ServiceClient<C> {
      const perChannel = channels.map((c) => c.client(contract) as unknown as Record<string, Call>);
      const out: Record<string, unknown> = {};
      for (const [name, method] of Object.entries(contract.methods)) {
        const deadlineOf = (o?: CallOptions) =>
          o?.deadlineMs ?? method.deadlineMs ?? DEFAULT_RPC_DEADLINE_MS;
        const at = (channel: RpcChannel) => perChannel[channels.indexOf(channel)]![name]!;
        out[name] =
          method.kind === 'unary'
            ? (req: unknown, o?: CallOptions) =>
                onLeader(deadlineOf(o), (c, remainingMs) =>
                  at(c)(req, { ...o, deadlineMs: remainingMs }),
                )
            : (req: unknown, onItem: (item: unknown) => void, o?: CallOptions) =>
                onLeader(deadlineOf(o), (c, remainingMs) =>
                  at(c)(req, onItem, { ...o, deadlineMs: remainingMs }),
                );
      }
      return out as ServiceClient<C>;
    },
    async close() {
      closed = true;
      await Promise.all(channels.map((c) => c.close()));
    },
  };
}

type Call = (...args: unknown[]) => Promise<unknown>;

/** A replica that cannot take the call now: unreachable, or not the leader. */
function movesOn(err: unknown): boolean {
  if (err instanceof RemoteError) return err.remoteCode === 'BATON_ERR_NOT_LEADER';
  return err instanceof UnavailableError || err instanceof DeadlineExceededError;
}

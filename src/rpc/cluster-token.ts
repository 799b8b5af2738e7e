/**
 * The cluster token on internal RPC: sent with every call
 * (`authorization: Bearer TOKEN`) and checked by every RPC server before any
 * handler runs, so that nothing else that reaches an RPC port (a sandbox, a
 * neighbour on the network) can create sandboxes, deregister workers or push
 * routes. Where the token comes from: shared/cluster-token.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthenticatedError } from '../shared/errors.js';
import type { AdmitCall } from './contract.js';
import type { RpcTransport } from './transport.js';

const HEADER = 'authorization';
const SCHEME = 'Bearer ';

/** The transport, sending `token` with every call it makes and refusing every call it serves without it. */
export function withClusterToken(transport: RpcTransport, token: string): RpcTransport {
  const check = tokenCheck(token);
  const header = `${SCHEME}${token}`;
  return {
    createListener: (logger, options) =>
      transport.createListener(logger, {
        admit: (metadata) => {
          check(metadata);
          options?.admit?.(metadata);
        },
      }),
    connect: (options) =>
      transport.connect({
        ...options,
        metadata: () => ({ ...options.metadata?.(), [HEADER]: header }),
      }),
  };
}

/** The server's check: the call carries this token (compared in constant time). */
export function tokenCheck(token: string): AdmitCall {
  const expected = digest(token);
  return (metadata) => {
    const given = metadata(HEADER);
    if (given === undefined || !given.startsWith(SCHEME))
      throw new UnauthenticatedError(
        'internal RPC needs the cluster token (authorization: Bearer TOKEN)',
      );
    if (!timingSafeEqual(digest(given.slice(SCHEME.length)), expected))
      throw new UnauthenticatedError("the call's token is not this cluster's");
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

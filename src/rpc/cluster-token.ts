/**
 * The cluster token on internal RPC: sent with every call
 * (`authorization: Bearer TOKEN`) and checked by every RPC server before any
 * handler runs, so that nothing else that reaches an RPC port (a sandbox, a
 * neighbour on the network) can create sandboxes, deregister workers or push
 * routes. Where the token comes from: shared/secrets.ts.
 */
import { bearer, bearerCheck } from '../shared/secrets.js';
import type { AdmitCall } from './contract.js';
import type { RpcTransport } from './transport.js';

const HEADER = 'authorization';

/** The transport, sending `token` with every call it makes and refusing every call it serves without it. */
export function withClusterToken(transport: RpcTransport, token: string): RpcTransport {
  const check = tokenCheck(token);
  const header = bearer(token);
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
  const check = bearerCheck(token, {
    missing: 'internal RPC needs the cluster token (authorization: Bearer TOKEN)',
    wrong: "the call's token is not this cluster's",
  });
  return (metadata) => check(metadata(HEADER));
}

/** Data-plane service: the control plane pushes functions and endpoints, and drains. */
import { z } from 'zod';
import { defineService, unary } from '../contract.js';
import { emptySchema, endpointSchema, functionRouteSchema } from './common.js';

export const dataPlaneUpdateSchema = z.object({
  /** Replace everything the data plane knows with this update (sent after it registers). */
  reset: z.boolean().optional(),
  upsertFunctions: z.array(functionRouteSchema).optional(),
  removeFunctions: z.array(z.string()).optional(),
  addEndpoints: z.array(endpointSchema).optional(),
  /** Sandbox ids. In-flight requests on them finish; nothing new is sent. */
  removeEndpoints: z.array(z.string()).optional(),
  /**
   * How removed sandboxes ended (they died or were stopped by a limit), for
   * the requests they were serving: those are answered with the reason.
   */
  endReasons: z.array(z.object({ id: z.string(), reason: z.string() })).optional(),
  /**
   * Functions whose sandboxes cannot be started: their queued requests are
   * answered 502 with this reason instead of waiting for the cold-start timeout.
   */
  failQueued: z
    .array(z.object({ function: z.string(), code: z.string(), message: z.string() }))
    .optional(),
});
export type DataPlaneUpdate = z.infer<typeof dataPlaneUpdateSchema>;

export const dataPlaneService = defineService('data-plane', {
  /** Applies a batch of changes in order: reset, functions, endpoints, failures. Idempotent per item. */
  applyUpdates: unary(dataPlaneUpdateSchema, emptySchema),
  /** Removes the endpoints, then resolves once their in-flight requests ended (or the timeout passed). */
  drainSandboxes: unary(
    z.object({ ids: z.array(z.string()), timeoutMs: z.number().int().min(0) }),
    z.object({ remaining: z.number().int() }),
    600_000,
  ),
  /**
   * Refuses new requests for the function, lets queued and in-flight ones
   * finish on existing sandboxes, then resolves. Queued requests with no
   * sandbox to run on are answered 503.
   */
  drainFunction: unary(
    z.object({ name: z.string(), timeoutMs: z.number().int().min(0) }),
    z.object({ remaining: z.number().int() }),
    600_000,
  ),
});
export type DataPlaneService = typeof dataPlaneService;

/** Messages shared by more than one internal service. */
import { z } from 'zod';

export const portSchema = z.number().int().min(1).max(65535);

/** Where a ready sandbox serves. Dirigent's Sandbox object: id, address, port, worker. */
export const endpointSchema = z.object({
  id: z.string().min(1),
  function: z.string().min(1),
  workerId: z.string().min(1),
  host: z.string().min(1),
  port: portSchema,
  /** Every request to it gets a fresh sandbox (isolate-per-request): a cold start each time. */
  freshPerRequest: z.boolean().optional(),
  /**
   * Its worker's runtime may start the sandbox for a request (a standby
   * sandbox makes its isolate) and then answers with `x-baton-start: cold`,
   * which data planes pass on (RuntimeCapabilities.reportsColdStart).
   */
  reportsColdStart: z.boolean().optional(),
});
export type Endpoint = z.infer<typeof endpointSchema>;

/** What a data plane needs to route to a function. */
export const functionRouteSchema = z.object({
  name: z.string().min(1),
  /** Requests per sandbox at once; 0 = unlimited. */
  concurrency: z.number().int().min(0),
  coldStartTimeoutMs: z.number().int().min(1),
  /** Execution time-out of one invocation (FunctionSpec.timeoutMs). */
  timeoutMs: z.number().int().min(1),
  /**
   * Where requests for this name go, by weight (percent): its revisions,
   * each a function of its own (this one is revision 1). None: here.
   */
  split: z
    .array(z.object({ function: z.string().min(1), weight: z.number().int().min(0).max(100) }))
    .optional(),
});
export type FunctionRoute = z.infer<typeof functionRouteSchema>;

/** Per-phase latency of one sandbox creation, in ms (0 where a runtime has no such phase). */
export const creationTimingsSchema = z.object({
  imageFetchMs: z.number().min(0),
  createMs: z.number().min(0),
  networkMs: z.number().min(0),
  startMs: z.number().min(0),
  readinessMs: z.number().min(0),
  totalMs: z.number().min(0),
});
export type CreationTimings = z.infer<typeof creationTimingsSchema>;

export const emptySchema = z.object({}).passthrough();

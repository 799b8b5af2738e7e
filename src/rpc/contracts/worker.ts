/** Worker service: the control plane creates, deletes and lists sandboxes through it. */
import { z } from 'zod';
import { defineService, stream, unary } from '../contract.js';
import { functionSpecSchema } from '../../shared/function-spec.js';
import { creationTimingsSchema, emptySchema, portSchema } from './common.js';

export const sandboxStateSchema = z.object({
  id: z.string().min(1),
  function: z.string().min(1),
  host: z.string().min(1),
  port: portSchema,
  /** Made standby and still one (SandboxHandle.standby): takes no capacity. */
  standby: z.boolean().optional(),
});
export type SandboxState = z.infer<typeof sandboxStateSchema>;

export const sandboxLogSchema = z.object({
  id: z.string().min(1),
  function: z.string().min(1),
  /** `running`, or `exited: REASON` for a sandbox that is gone (the worker keeps a few). */
  state: z.string(),
  /** The newest output, bounded (only what was written at or after `sinceMs` when asked). */
  text: z.string(),
  /** Bytes it has written since it started: a follower prints what lies past the last `end` it saw. */
  end: z.number().int().min(0),
});
export type SandboxLog = z.infer<typeof sandboxLogSchema>;

export const createResultSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    id: z.string(),
    host: z.string(),
    port: portSchema,
    timings: creationTimingsSchema,
  }),
  z.object({
    ok: z.literal(false),
    id: z.string(),
    code: z.string(),
    message: z.string(),
    /** False when retrying on the same spec cannot help (bad image, crash at start). */
    retryable: z.boolean(),
  }),
]);
export type CreateResult = z.infer<typeof createResultSchema>;

export const workerService = defineService('worker', {
  /** Starts every sandbox of the batch at once; one item per sandbox as soon as it is ready or failed. */
  createSandboxes: stream(
    z.object({
      sandboxes: z
        .array(
          z.object({
            id: z.string().min(1),
            spec: functionSpecSchema,
            /** Made for no request in particular (the control plane's floor): see CreateOptions. */
            standby: z.boolean().optional(),
            /** The values of the spec's secrets, by name: added to its environment, kept nowhere else. */
            secretEnv: z.record(z.string(), z.string()).optional(),
          }),
        )
        .min(1),
    }),
    createResultSchema,
    120_000,
  ),
  /** Stops the sandboxes (SIGTERM, then SIGKILL after the grace period). Unknown ids are reported, not an error. */
  deleteSandboxes: unary(
    z.object({ ids: z.array(z.string().min(1)) }),
    z.object({ deleted: z.array(z.string()), missing: z.array(z.string()) }),
    30_000,
  ),
  listSandboxes: unary(emptySchema, z.object({ sandboxes: z.array(sandboxStateSchema) })),
  /** Forgets the output kept of a deleted function's sandboxes. */
  dropLogs: unary(z.object({ function: z.string().min(1) }), emptySchema, 5_000),
  /**
   * Whether this worker's runtime can run the spec's image (it resolves, and
   * a module compiles): asked at registration. `error` says why not.
   */
  checkImage: unary(
    z.object({ spec: functionSpecSchema }),
    z.object({ error: z.string().optional() }),
    30_000,
  ),
  /** Output of the function's sandboxes on this worker, running and recently exited. */
  sandboxLogs: unary(
    z.object({
      function: z.string().min(1),
      sandbox: z.string().optional(),
      /** Only output written at or after this time (epoch ms). */
      sinceMs: z.number().optional(),
    }),
    z.object({ sandboxes: z.array(sandboxLogSchema) }),
    5_000,
  ),
});
export type WorkerService = typeof workerService;

/** Control-plane service: workers and data planes register, beat and report through it. */
import { z } from 'zod';
import { defineService, unary } from '../contract.js';
import {
  dataPlaneRecordSchema,
  trafficTotalsSchema,
  loadTotalsSchema,
  workerRecordSchema,
} from '../../shared/cluster-objects.js';
import { emptySchema, functionRouteSchema } from './common.js';
import { sandboxStateSchema } from './worker.js';
import { invocationViewSchema } from '../../shared/http-api.js';

const heartbeatReplySchema = z.object({
  /** False when the control plane does not know the caller (it restarted): register again. */
  known: z.boolean(),
});

/** How long a data plane remembers that a function does not exist (see lookupFunction). */
export const NEGATIVE_TTL_MS = 1_000;

export const controlPlaneService = defineService('control-plane', {
  /** Idempotent. `sandboxes` are those the worker already runs; the control plane adopts or deletes them. */
  registerWorker: unary(
    z.object({ worker: workerRecordSchema, sandboxes: z.array(sandboxStateSchema) }),
    z.object({ heartbeatIntervalMs: z.number().int().min(1) }),
  ),
  deregisterWorker: unary(z.object({ workerId: z.string() }), emptySchema),
  workerHeartbeat: unary(
    z.object({
      workerId: z.string(),
      cpuPercent: z.number().min(0),
      memoryPercent: z.number().min(0).max(100),
      sandboxes: z.number().int().min(0),
    }),
    heartbeatReplySchema,
  ),
  /** Sandboxes that died or failed their start after being reported ready. */
  sandboxesFailed: unary(
    z.object({
      workerId: z.string(),
      failures: z.array(z.object({ id: z.string(), reason: z.string() })),
    }),
    emptySchema,
  ),
  /** Idempotent. The control plane then pushes a full `reset` update to the data plane. */
  registerDataPlane: unary(
    z.object({ dataPlane: dataPlaneRecordSchema }),
    z.object({ heartbeatIntervalMs: z.number().int().min(1) }),
  ),
  deregisterDataPlane: unary(z.object({ dataPlaneId: z.string() }), emptySchema),
  dataPlaneHeartbeat: unary(z.object({ dataPlaneId: z.string() }), heartbeatReplySchema),
  /**
   * Per function on one data plane: `inflight` = queued + executing (the
   * autoscaling metric), `queued` = waiting for a sandbox. Functions absent
   * from a report are unchanged.
   */
  reportMetrics: unary(
    z.object({
      dataPlaneId: z.string(),
      metrics: z.array(
        z.object({
          function: z.string(),
          inflight: z.number().int().min(0),
          queued: z.number().int().min(0),
          /** Counts since this data plane began routing the function (for the dashboard's rates). */
          totals: trafficTotalsSchema.optional(),
          /** Its load here over time (older data planes send none: the scaler then samples `inflight`). */
          load: loadTotalsSchema.optional(),
        }),
      ),
    }),
    emptySchema,
  ),
  /**
   * Sandboxes a data plane stopped sending to because they broke a rule
   * (e.g. an invocation passed the function's execution time-out): the
   * control plane deletes and replaces them, and records the reason.
   */
  evictSandboxes: unary(
    z.object({
      dataPlaneId: z.string(),
      sandboxes: z.array(z.object({ id: z.string(), code: z.string(), reason: z.string() })),
    }),
    emptySchema,
  ),
  /**
   * A request for a function the data plane does not have (new functions
   * are pushed in batches, shortly after registration): when the control
   * plane holds it, it pushes the function (with its ready endpoints) to
   * that data plane and answers `found` once it was applied.
   * A data plane told `found: false` answers 404 for that name for
   * NEGATIVE_TTL_MS from when it asked; a registration in that time pushes
   * the function to it.
   */
  lookupFunction: unary(
    z.object({ dataPlaneId: z.string(), name: z.string().min(1) }),
    z.object({ found: z.boolean() }),
  ),
  listFunctions: unary(emptySchema, z.object({ functions: z.array(functionRouteSchema) })),
  /** An asynchronous invocation a data plane took: answered once it is durable. */
  enqueueInvocation: unary(
    z.object({
      function: z.string().min(1),
      method: z.string().min(1),
      path: z.string().min(1),
      headers: z.record(z.string(), z.string()),
      bodyBase64: z.string(),
      callbackUrl: z.string().optional(),
    }),
    z.object({ id: z.string() }),
  ),
  /** An asynchronous invocation as `GET /v1/invocations/ID` shows it (a data plane serves that path too). */
  getInvocation: unary(z.object({ id: z.string().min(1) }), invocationViewSchema),
});
export type ControlPlaneService = typeof controlPlaneService;

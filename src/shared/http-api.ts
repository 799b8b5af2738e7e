/**
 * The control plane's JSON API (`/v1/...`) as a contract: what each answer
 * holds, as zod schemas. The control plane builds its answers to these types
 * and the CLI parses them with the same schemas, so the two cannot drift.
 * Dirigent's form API (`/registerService`) answers text and is not here.
 */
import { INVOCATION_STATES } from './async-invocation.js';
import { z } from 'zod';
import { functionSpecSchema } from './function-spec.js';
import { supervisedDaemonSchema } from './supervision.js';
import { trafficTotalsSchema } from './cluster-objects.js';

/** `DELETE /v1/functions/NAME` waits this long for in-flight requests unless `drain_timeout_ms` says otherwise. */
export const DEFAULT_DELETE_DRAIN_TIMEOUT_MS = 60_000;

export const failureSchema = z.object({ code: z.string(), message: z.string() });

/** `GET /v1/functions`: one function with its counts. */
export const functionStatusSchema = z.object({
  spec: functionSpecSchema,
  /** Ready sandboxes. */
  sandboxes: z.number(),
  creating: z.number(),
  draining: z.number(),
  /** Queued plus executing requests over every data plane. */
  inflight: z.number(),
  queued: z.number(),
  desired: z.number(),
  sandboxesCreated: z.number(),
  /** Its invocations so far, summed over the data planes (rates are differences over time). */
  traffic: trafficTotalsSchema,
  /** The last failure of its sandboxes (creation, exit, eviction), if any. */
  lastFailure: failureSchema.nullable(),
});
export type FunctionStatus = z.infer<typeof functionStatusSchema>;

export const sandboxInfoSchema = z.object({
  id: z.string(),
  worker: z.string(),
  /** Where it serves; null while it is created. */
  address: z.string().nullable(),
  state: z.enum(['creating', 'ready', 'draining']),
  readyAt: z.string().nullable(),
  creationMs: z.number().nullable(),
});

/** `GET /v1/functions/NAME`. */
export const functionDetailSchema = functionStatusSchema.extend({
  sandboxList: z.array(sandboxInfoSchema),
});
export type FunctionDetail = z.infer<typeof functionDetailSchema>;

export const functionListSchema = z.object({ functions: z.array(functionStatusSchema) });

/** `GET` and `PUT /v1/functions/NAME`: the function, and where to invoke it (`;`-separated addresses). */
export const putFunctionReplySchema = functionDetailSchema.extend({
  invoke: z.string(),
  /** PUT only: what the deployment did, and the revision that now has the spec. */
  outcome: z.enum(['created', 'unchanged', 'updated']).optional(),
  revision: z.number().int().optional(),
});

/** `GET /v1/functions/NAME/revisions`. */
export const revisionListSchema = z.object({
  revisions: z.array(
    z.object({
      revision: z.number().int(),
      function: z.string(),
      image: z.string(),
      weight: z.number(),
      sandboxes: z.number(),
    }),
  ),
});

/** `PUT /v1/functions/NAME/traffic`. */
export const trafficReplySchema = z.object({
  split: z.array(z.object({ revision: z.number().int(), weight: z.number() })),
});

/** `DELETE /v1/functions/NAME`. */
export const deleteReplySchema = z.object({
  deleted: z.string(),
  /** Every in-flight request finished within the drain time-out. */
  drained: z.boolean(),
  remaining: z.number(),
});

/** `GET /v1/invocations/ID`: an asynchronous invocation (async-invocations.ts invocationView). */
export const invocationViewSchema = z.object({
  id: z.string(),
  function: z.string(),
  state: z.enum(INVOCATION_STATES),
  attempts: z.number(),
  request: z.object({ method: z.string(), path: z.string() }),
  acceptedAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  status: z.number().nullable(),
  headers: z.record(z.string(), z.string()).nullable(),
  bodyBase64: z.string().nullable(),
  error: z.string().nullable(),
});

/** `GET /v1/dlq`. */
export const dlqListSchema = z.object({ invocations: z.array(invocationViewSchema) });

/** A secret as the API shows it (`PUT`/`GET /v1/secrets/NAME`): never its value. */
export const secretInfoSchema = z.object({
  name: z.string(),
  updatedAt: z.string(),
  /** Functions whose spec names it. */
  usedBy: z.array(z.string()),
});

/** `GET /v1/secrets`. */
export const secretListSchema = z.object({ secrets: z.array(secretInfoSchema) });

/** `DELETE /v1/secrets/NAME`. */
export const secretDeleteReplySchema = z.object({ deleted: z.string() });

/** `GET /v1/functions/NAME/logs`. */
export const logsReplySchema = z.object({
  sandboxes: z.array(
    z.object({
      id: z.string(),
      function: z.string(),
      worker: z.string(),
      /** `running`, or `exited: REASON`. */
      state: z.string(),
      text: z.string(),
      /** Bytes the sandbox has written since it started (`text` is the newest of them). */
      end: z.number(),
    }),
  ),
  /** Workers that did not answer, and why. */
  unreachable: z.array(z.object({ worker: z.string(), reason: z.string() })),
});
export type LogsReply = z.infer<typeof logsReplySchema>;

const resourcesSchema = z.object({ cpuMilli: z.number(), memoryMib: z.number() });

/** `GET /v1/status`. */
export const clusterStatusSchema = z.object({
  uptimeS: z.number(),
  /** The control plane has loaded its state from the store. */
  ready: z.boolean(),
  store: z.object({
    kind: z.string(),
    ok: z.boolean(),
    error: z.string().nullable(),
    sinceS: z.number(),
  }),
  functions: z.number(),
  sandboxes: z.object({ ready: z.number(), creating: z.number(), draining: z.number() }),
  workers: z.array(
    z.object({
      id: z.string(),
      address: z.string(),
      runtime: z.string(),
      /** Sandboxes it was asked to make and not yet to delete (a creation waiting for a reclaimed sandbox's room is not one). */
      sandboxes: z.number(),
      cpuPercent: z.number(),
      memoryPercent: z.number(),
      allocated: resourcesSchema,
      capacity: resourcesSchema,
      sandboxFloor: resourcesSchema,
      /** What keeps its sandboxes from the host and each other; absent from workers of older versions. */
      isolation: z.string().optional(),
      lastHeartbeatMsAgo: z.number(),
    }),
  ),
  dataPlanes: z.array(
    z.object({
      id: z.string(),
      proxy: z.string(),
      /** Its proxy speaks TLS (https). */
      tls: z.boolean().optional(),
      rpc: z.string(),
      /** Dirigent's async read side (POST an invocation id). */
      asyncRead: z.string().optional(),
      lastHeartbeatMsAgo: z.number(),
    }),
  ),
  /** The daemons `baton up` runs, when it runs this cluster. */
  supervised: z.array(supervisedDaemonSchema).optional(),
  /** Control-plane replicas, when they run an election (the leader first). */
  controlPlanes: z
    .array(
      z.object({
        id: z.string(),
        rpc: z.string(),
        registration: z.string(),
        pid: z.number(),
        role: z.enum(['leader', 'follower']),
      }),
    )
    .optional(),
  /** The leader's epoch (its election revision), when replicas run an election. */
  epoch: z.number().optional(),
});
export type ClusterStatus = z.infer<typeof clusterStatusSchema>;

/** `GET /metrics` of the control plane (JSON). */
export const controlPlaneMetricsSchema = z.object({
  functions: z.number(),
  workers: z.number(),
  dataPlanes: z.number(),
  sandboxes: z.number(),
  inflight: z.number(),
  queued: z.number(),
  sandboxesCreated: z.number(),
  creationFailures: z.number(),
  sandboxesDeleted: z.number(),
  sandboxesLost: z.number(),
  sandboxesEvicted: z.number(),
  sandboxesReclaimed: z.number(),
  sandboxCreationMs: z.object({
    p50: z.number().nullable(),
    p99: z.number().nullable(),
    samples: z.number(),
  }),
});
export type ControlPlaneMetrics = z.infer<typeof controlPlaneMetricsSchema>;

/** Every `/v1` error. */
export const apiErrorSchema = z.object({ code: z.string(), message: z.string() });

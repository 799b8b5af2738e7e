/**
 * The persisted cluster objects besides functions (Dirigent's Table 2):
 * workers and data planes, each only what is needed to reach it again.
 * Sandboxes are deliberately absent: they live in memory only.
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

/**
 * What a worker's runtime can do, as the runtime declares it: the control
 * plane and data planes act on these, never on a runtime's name.
 */
export const runtimeCapabilitiesSchema = z.object({
  /**
   * It can keep a standby sandbox: a port and the function's code, its
   * isolate made by the first request in that request's own path. The
   * control plane keeps one per function while every worker can, so an
   * invocation never waits for the control plane (Dandelion's and
   * Cloudflare Workers' model); it takes no capacity.
   */
  standby: z.boolean(),
  /** Every request runs in a fresh sandbox of its own: a cold start each time, any number at once. */
  freshPerRequest: z.boolean(),
  /** Its sandboxes say when they started for a request (`x-baton-start: cold`); data planes pass that on. */
  reportsColdStart: z.boolean(),
  /**
   * An idle sandbox holds nothing of the host (a simulated one is an entry in
   * a shared server): one reclaimed for another function gives its room at
   * once, not once it is deleted. Absent: it holds its room until deleted.
   */
  idleHoldsNothing: z.boolean().optional(),
});
export type RuntimeCapabilities = z.infer<typeof runtimeCapabilitiesSchema>;

/** A runtime that can do none of the above (the default for records stored before they were declared). */
export const NO_CAPABILITIES: RuntimeCapabilities = {
  standby: false,
  freshPerRequest: false,
  reportsColdStart: false,
};

export const workerRecordSchema = z.object({
  id: z.string().min(1).max(253),
  host: z.string().min(1),
  rpcPort: port,
  /** Schedulable capacity. */
  cpuCapacityMilli: z.number().int().min(1),
  memoryCapacityMib: z.number().int().min(1),
  runtime: z.string().min(1),
  /**
   * The least a sandbox takes of this worker's capacity in placement,
   * whatever it requests (its runtime says). Absent in records stored before
   * it existed: nothing.
   */
  sandboxFloor: z
    .object({ cpuMilli: z.number().int().min(0), memoryMib: z.number().int().min(0) })
    .optional(),
  capabilities: runtimeCapabilitiesSchema.optional(),
  /** One line: what keeps its sandboxes from the host and each other (its runtime's report). */
  isolation: z.string().max(500).optional(),
  /** Where it serves Prometheus metrics (GET /metrics on host), if it does. */
  metricsPort: port.optional(),
});
export type WorkerRecord = z.infer<typeof workerRecordSchema>;

export const dataPlaneRecordSchema = z.object({
  id: z.string().min(1).max(253),
  host: z.string().min(1),
  rpcPort: port,
  proxyPort: port,
  /** Its proxy speaks TLS. */
  tls: z.boolean().optional(),
  /** Where it serves Prometheus metrics (GET /metrics on host), if it does. */
  metricsPort: port.optional(),
  /** Where Dirigent's async read side listens, if it does. */
  asyncReadPort: port.optional(),
});
export type DataPlaneRecord = z.infer<typeof dataPlaneRecordSchema>;

/** A function's invocations as data planes count them, since they began routing it. */
export const trafficTotalsSchema = z.object({
  invocations: z.number().int().min(0),
  /** Answered with a status of 500 or more. */
  failures: z.number().int().min(0),
  /** Waited for a sandbox to be made. */
  coldStarts: z.number().int().min(0),
  /** Sum of end-to-end times at the data plane. */
  durationMs: z.number().min(0),
});
export type TrafficTotals = z.infer<typeof trafficTotalsSchema>;

export function zeroTraffic(): TrafficTotals {
  return { invocations: 0, failures: 0, coldStarts: 0, durationMs: 0 };
}

export function sumTraffic(all: Iterable<TrafficTotals>): TrafficTotals {
  const sum = zeroTraffic();
  for (const t of all) {
    sum.invocations += t.invocations;
    sum.failures += t.failures;
    sum.coldStarts += t.coldStarts;
    sum.durationMs += t.durationMs;
  }
  return sum;
}

/**
 * A function's load on one data plane, cumulative since it began routing
 * it: what the autoscaler averages over its windows (`LoadMeter`).
 */
export const loadTotalsSchema = z.object({
  /** Its in-flight count (queued + executing) integrated over time: request-milliseconds. */
  inflightMs: z.number().min(0),
  /** Requests a sandbox finished with (answered, failed or cut short). */
  served: z.number().int().min(0),
  /** Their times from being sent to a sandbox to its answer's end, summed. */
  serviceMs: z.number().min(0),
});
export type LoadTotals = z.infer<typeof loadTotalsSchema>;

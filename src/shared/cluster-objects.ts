/**
 * The persisted cluster objects besides functions (Dirigent's Table 2):
 * workers and data planes, each only what is needed to reach it again.
 * Sandboxes are deliberately absent: they live in memory only.
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

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
});
export type WorkerRecord = z.infer<typeof workerRecordSchema>;

export const dataPlaneRecordSchema = z.object({
  id: z.string().min(1).max(253),
  host: z.string().min(1),
  rpcPort: port,
  proxyPort: port,
});
export type DataPlaneRecord = z.infer<typeof dataPlaneRecordSchema>;

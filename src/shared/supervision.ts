/**
 * What `baton up` tells its control plane about the daemons it supervises
 * (an IPC message on every change), so that `baton status` shows restarts
 * that the cluster's own records cannot: a data plane that keeps failing
 * looks, from the control plane, like one that comes and goes.
 */
import { z } from 'zod';

export const supervisedDaemonSchema = z.object({
  name: z.string(),
  /** Current process, if one runs. */
  pid: z.number().int().nullable(),
  /** `running`; `restarting` while it waits out its back-off or starts again. */
  state: z.enum(['running', 'restarting']),
  /** Restarts since `baton up` started. */
  restarts: z.number().int().min(0),
  /** How the last process ended (`code 70`, `SIGKILL`), if one did. */
  lastExit: z.string().nullable(),
  /** When the current process became ready (ISO time), or null. */
  since: z.string().nullable(),
});
export type SupervisedDaemon = z.infer<typeof supervisedDaemonSchema>;

export const supervisorReportSchema = z.object({
  type: z.literal('baton-supervisor'),
  daemons: z.array(supervisedDaemonSchema),
});
export type SupervisorReport = z.infer<typeof supervisorReportSchema>;

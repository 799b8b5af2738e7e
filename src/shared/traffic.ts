/**
 * How a function's requests are shared among its revisions: percentages by
 * revision number, summing to 100. Stored apart from the revisions' specs
 * (which never change) and changed by deploying, rolling back or setting a
 * split.
 */
import { z } from 'zod';

export const trafficSplitSchema = z
  .array(
    z.object({
      revision: z.number().int().min(1),
      weight: z.number().int().min(0).max(100),
    }),
  )
  .min(1)
  .refine((s) => s.reduce((a, b) => a + b.weight, 0) === 100, 'weights must sum to 100')
  .refine((s) => new Set(s.map((x) => x.revision)).size === s.length, 'a revision is named twice');

export type TrafficSplit = z.infer<typeof trafficSplitSchema>;

export const trafficRecordSchema = z
  .object({
    /** The function (revision 1's name). */
    name: z.string().min(1),
    split: trafficSplitSchema,
  })
  .strict();

export type TrafficRecord = z.infer<typeof trafficRecordSchema>;

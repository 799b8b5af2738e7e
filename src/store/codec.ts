/** Validation of records read back from a store: a corrupt record is an error, never silently used. */
import type { z } from 'zod';
import { functionSpecSchema } from '../shared/function-spec.js';
import { dataPlaneRecordSchema, workerRecordSchema } from '../shared/cluster-objects.js';
import { StoreCorruptError } from '../shared/errors.js';
import { describeZodError } from '../shared/function-spec.js';
import type { RecordKind } from './keys.js';

const schemas = {
  functions: functionSpecSchema,
  workers: workerRecordSchema,
  'data-planes': dataPlaneRecordSchema,
} as const satisfies Record<RecordKind, z.ZodType>;

export type RecordOf<K extends RecordKind> = z.infer<(typeof schemas)[K]>;

export function decodeRecord<K extends RecordKind>(
  kind: K,
  id: string,
  value: unknown,
): RecordOf<K> {
  const parsed = schemas[kind].safeParse(value);
  if (!parsed.success) {
    throw new StoreCorruptError(
      `stored ${kind} record "${id}" is invalid: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data as RecordOf<K>;
}

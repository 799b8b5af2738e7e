/** Validation of records read back from a store: a corrupt record is an error, never silently used. */
import type { z } from 'zod';
import { functionSpecSchema } from '../shared/function-spec.js';
import { dataPlaneRecordSchema, workerRecordSchema } from '../shared/cluster-objects.js';
import { secretRecordSchema } from '../shared/secret-record.js';
import { trafficRecordSchema } from '../shared/traffic.js';
import { asyncInvocationSchema } from '../shared/async-invocation.js';
import { StoreCorruptError, errorMessage } from '../shared/errors.js';
import { describeZodError } from '../shared/function-spec.js';
import type { RecordKind } from './keys.js';

const schemas = {
  functions: functionSpecSchema,
  workers: workerRecordSchema,
  'data-planes': dataPlaneRecordSchema,
  secrets: secretRecordSchema,
  traffic: trafficRecordSchema,
  invocations: asyncInvocationSchema,
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

/** A record stored as JSON text: StoreCorruptError when it is not JSON or not a valid record. */
export function decodeJsonRecord<K extends RecordKind>(
  kind: K,
  id: string,
  raw: string,
): RecordOf<K> {
  let value: unknown;
  try {
    value = JSON.parse(raw) as unknown;
  } catch (err) {
    throw new StoreCorruptError(`stored ${kind} record "${id}" is not JSON: ${errorMessage(err)}`);
  }
  return decodeRecord(kind, id, value);
}

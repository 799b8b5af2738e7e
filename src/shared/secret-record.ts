/**
 * A secret: a named value that functions reference by name (`secrets` in
 * their spec) and get as an environment variable of that name in every
 * sandbox. Stored apart from specs; never part of an API answer, a log line
 * or a listing (names and times only).
 */
import { z } from 'zod';

/** Longest value, in UTF-16 code units (an environment variable, not a file). */
export const MAX_SECRET_LENGTH = 64 * 1024;

export const secretNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(
    /^[A-Za-z_][A-Za-z0-9_]*$/,
    'must match [A-Za-z_][A-Za-z0-9_]* (it becomes an environment variable)',
  );

export const secretRecordSchema = z
  .object({
    name: secretNameSchema,
    value: z.string().max(MAX_SECRET_LENGTH, `must be at most ${MAX_SECRET_LENGTH} characters`),
    /** ISO time of the last set. */
    updatedAt: z.string(),
  })
  .strict();

export type SecretRecord = z.infer<typeof secretRecordSchema>;

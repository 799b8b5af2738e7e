/**
 * The Function object: what a user registers. One canonical shape
 * (`FunctionSpec`) is produced from both the Dirigent form API and Baton's JSON
 * API, validated once here, and stored. Scheduling metrics are not part of it.
 */
import { z } from 'zod';
import { InvalidArgumentError } from './errors.js';

export const DEFAULT_COLD_START_TIMEOUT_MS = 60_000;
/** Longest one invocation may run (Knative's and Lambda's limits are of this order). */
export const DEFAULT_EXECUTION_TIMEOUT_MS = 300_000;
export const MAX_EXECUTION_TIMEOUT_MS = 3_600_000;
export const DEFAULT_FUNCTION_PORT = 80;
export const DEFAULT_ASYNC_ATTEMPTS = 3;
export const DEFAULT_ASYNC_BACKOFF_MS = 1000;
/** What an unset field of a registration becomes (the CLI's help shows these). */
export const FUNCTION_DEFAULTS = {
  port: DEFAULT_FUNCTION_PORT,
  protocol: 'tcp',
  cpuMilli: 1,
  memoryMib: 1,
  concurrency: 1,
  minScale: 0,
  coldStartTimeoutMs: DEFAULT_COLD_START_TIMEOUT_MS,
  timeoutMs: DEFAULT_EXECUTION_TIMEOUT_MS,
} as const;
export const MAX_FUNCTION_NAME_LENGTH = 253;

/** Host-header safe: lowercase letters, digits, '-', '_' and '.', starting and ending alphanumeric. */
export const FUNCTION_NAME_PATTERN = /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$/;

const envKey = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'env names must match [A-Za-z_][A-Za-z0-9_]*');

export const functionNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_FUNCTION_NAME_LENGTH, `must be at most ${MAX_FUNCTION_NAME_LENGTH} characters`)
  .regex(
    FUNCTION_NAME_PATTERN,
    'must be lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit',
  );

/**
 * A function's revisions (control-plane/revisions.ts) are functions of
 * their own: revision 1 is NAME, revision N > 1 is NAME@N, a name no client
 * may give.
 */
const storedNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_FUNCTION_NAME_LENGTH + 7, `must be at most ${MAX_FUNCTION_NAME_LENGTH} characters`)
  .regex(
    /^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(@[1-9][0-9]{0,5})?$/,
    'must be lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit',
  );

/** The function name of a revision (revision 1 is the function's own name). */
export function revisionName(name: string, revision: number): string {
  return revision === 1 ? name : `${name}@${revision}`;
}

/** The function and revision a stored name stands for. */
export function parseRevisionName(stored: string): { name: string; revision: number } {
  const at = stored.lastIndexOf('@');
  return at < 0
    ? { name: stored, revision: 1 }
    : { name: stored.slice(0, at), revision: Number(stored.slice(at + 1)) };
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

/** Stored and exchanged form of a function. All fields are present after `compileFunctionSpec`. */
export const functionSpecSchema = z
  .object({
    name: storedNameSchema,
    image: z.string().min(1, 'must not be empty').max(4096),
    port: int(1, 65535),
    protocol: z.enum(['tcp', 'udp']),
    /** Milli-CPU requested per sandbox. */
    cpuMilli: int(0),
    /** MiB requested per sandbox. */
    memoryMib: int(0),
    /** Requests one sandbox serves at once; 0 = unlimited. */
    concurrency: int(0, 10_000),
    minScale: int(0, 100_000),
    /** Upper bound on sandboxes; null = unbounded. */
    maxScale: int(1, 100_000).nullable(),
    /** Dirigent's cold-start sweep preset: stable window 6 s, panic 2 s, upper bound 1. */
    coldStartSweep: z.boolean(),
    coldStartTimeoutMs: int(1, 3_600_000),
    /**
     * Longest one invocation may run once sent to a sandbox; past it the
     * client gets 504 and the sandbox is replaced. Specs stored before this
     * field existed read back with the default.
     */
    timeoutMs: int(1, MAX_EXECUTION_TIMEOUT_MS).default(DEFAULT_EXECUTION_TIMEOUT_MS),
    env: z.record(envKey, z.string()),
    /**
     * Names of secrets (secret-record.ts) each sandbox gets as environment
     * variables of those names. Specs stored before this field existed read
     * back with none.
     */
    secrets: z
      .array(envKey)
      .max(100, 'at most 100 secrets')
      .refine((a) => new Set(a).size === a.length, 'must not name a secret twice')
      .default([]),
    args: z.array(z.string()),
    /** Asynchronous invocations: attempts before one is dead-lettered. */
    asyncAttempts: int(1, 100).default(DEFAULT_ASYNC_ATTEMPTS),
    /** Asynchronous invocations: wait before the second attempt, doubled for each next one. */
    asyncBackoffMs: int(0, 3_600_000).default(DEFAULT_ASYNC_BACKOFF_MS),
  })
  .strict();

export type FunctionSpec = z.infer<typeof functionSpecSchema>;

/** What a client may send: everything but name and image is optional. */
export const functionSpecInputSchema = functionSpecSchema
  .partial()
  .required({ image: true })
  .strict();
export type FunctionSpecInput = z.input<typeof functionSpecInputSchema>;

/**
 * Applies defaults and cross-field rules. Throws InvalidArgumentError naming
 * the first bad field.
 */
export function compileFunctionSpec(input: unknown): FunctionSpec {
  const parsed = functionSpecInputSchema.safeParse(input);
  if (!parsed.success) {
    const { field, reason } = zodIssue(parsed.error);
    throw new InvalidArgumentError(reason, { field });
  }
  const v = parsed.data;
  if (v.name === undefined) throw new InvalidArgumentError('is required', { field: 'name' });
  const named = functionNameSchema.safeParse(v.name);
  if (!named.success)
    throw new InvalidArgumentError(
      v.name.includes('@')
        ? `"${v.name}": '@' marks a revision (give the function's own name)`
        : (named.error.issues[0]?.message ?? 'invalid'),
      { field: 'name' },
    );
  const sweep = v.coldStartSweep ?? false;
  const spec: FunctionSpec = {
    name: v.name,
    image: v.image,
    port: v.port ?? FUNCTION_DEFAULTS.port,
    protocol: v.protocol ?? FUNCTION_DEFAULTS.protocol,
    cpuMilli: v.cpuMilli ?? FUNCTION_DEFAULTS.cpuMilli,
    memoryMib: v.memoryMib ?? FUNCTION_DEFAULTS.memoryMib,
    concurrency: v.concurrency ?? FUNCTION_DEFAULTS.concurrency,
    minScale: v.minScale ?? FUNCTION_DEFAULTS.minScale,
    // Dirigent's sweep preset has upper bound 1, and a given bound overrides it
    // (InVitro registers its warm function with cold_start_sweep and 1024).
    maxScale: v.maxScale ?? (sweep ? 1 : null),
    coldStartSweep: sweep,
    coldStartTimeoutMs: v.coldStartTimeoutMs ?? FUNCTION_DEFAULTS.coldStartTimeoutMs,
    timeoutMs: v.timeoutMs ?? FUNCTION_DEFAULTS.timeoutMs,
    env: v.env ?? {},
    secrets: v.secrets ?? [],
    args: v.args ?? [],
    asyncAttempts: v.asyncAttempts ?? DEFAULT_ASYNC_ATTEMPTS,
    asyncBackoffMs: v.asyncBackoffMs ?? DEFAULT_ASYNC_BACKOFF_MS,
  };
  const both = spec.secrets.find((name) => name in spec.env);
  if (both !== undefined)
    throw new InvalidArgumentError(`${both} is also set in env`, { field: 'secrets' });
  if (spec.maxScale !== null && spec.minScale > spec.maxScale) {
    throw new InvalidArgumentError(`${spec.minScale} must not exceed maxScale (${spec.maxScale})`, {
      field: 'minScale',
    });
  }
  return spec;
}

/** Two specs describe the same function (re-registration is then idempotent). */
export function sameFunctionSpec(a: FunctionSpec, b: FunctionSpec): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
      : v,
  );
}

/** The first offending field of a zod error and what is wrong with it. */
function zodIssue(error: z.ZodError): { field: string; reason: string } {
  const issue = error.issues[0];
  if (issue === undefined) return { field: 'input', reason: 'invalid input' };
  const field = issue.path.length > 0 ? issue.path.join('.') : 'input';
  if (issue.code === 'unrecognized_keys')
    return { field, reason: `unknown field(s) ${issue.keys.join(', ')}` };
  return { field, reason: issue.message };
}

/** One line naming the first offending field: `maxScale: must be >= 1`. */
export function describeZodError(error: z.ZodError): string {
  const { field, reason } = zodIssue(error);
  return `${field}: ${reason}`;
}

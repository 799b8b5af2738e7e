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

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_RULE = 'env names must match [A-Za-z_][A-Za-z0-9_]*';
const envKey = z.string().regex(ENV_NAME_PATTERN, ENV_NAME_RULE);
const MAX_IMAGE_LENGTH = 4096;
const MAX_SECRETS = 100;
const TOO_MANY_SECRETS = `at most ${MAX_SECRETS} secrets`;
const SECRET_TWICE = 'must not name a secret twice';
const NAME_RULE =
  'must be lowercase letters, digits, ".", "-" or "_", starting and ending with a letter or digit';

/*
 * The rules below say what is wrong with a value, if anything: the zod
 * schema reports their answers (`checkedBy`) and compileTypedFunctionSpec
 * throws them, so the two paths cannot differ.
 */

/** A name a client gave ('@' is for revisions). */
function nameFault(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.length > MAX_FUNCTION_NAME_LENGTH)
    return `must be at most ${MAX_FUNCTION_NAME_LENGTH} characters`;
  if (FUNCTION_NAME_PATTERN.test(name)) return undefined;
  return name.includes('@')
    ? `"${name}": '@' marks a revision (give the function's own name)`
    : NAME_RULE;
}

function imageFault(image: string): string | undefined {
  if (image === '') return 'must not be empty';
  if (image.length > MAX_IMAGE_LENGTH) return `must be at most ${MAX_IMAGE_LENGTH} characters`;
  return undefined;
}

/** Bounds first: 1e20 is past the bound, not "not an integer". */
function intFault(v: number, [min, max]: readonly [number, number]): string | undefined {
  if (v < min) return `must be at least ${min}`;
  if (v > max) return `must be at most ${max}`;
  return Number.isSafeInteger(v) ? undefined : 'must be an integer';
}

/** Checked as a whole: zod names a bad key in a record only "Invalid key in record". */
function envFault(env: Record<string, string>): string | undefined {
  return Object.keys(env).every((k) => ENV_NAME_PATTERN.test(k)) ? undefined : ENV_NAME_RULE;
}

const distinct = (names: readonly string[]) => new Set(names).size === names.length;

/** A zod check that reports what `fault` finds. */
const checkedBy =
  <T>(fault: (value: T) => string | undefined) =>
  (value: T, ctx: z.RefinementCtx<T>) => {
    const message = fault(value);
    if (message !== undefined) ctx.addIssue({ code: 'custom', message });
  };

export const functionNameSchema = z.string().superRefine(checkedBy(nameFault));

/**
 * A function's revisions (control-plane/revisions.ts) are functions of
 * their own: revision 1 is NAME, revision N > 1 is NAME@N, a name no client
 * may give.
 */
const storedNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_FUNCTION_NAME_LENGTH + 7, `must be at most ${MAX_FUNCTION_NAME_LENGTH} characters`)
  .regex(/^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(@[1-9][0-9]{0,5})?$/, NAME_RULE);

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

/**
 * Each integer field's bounds, inclusive: the schema below is built from
 * them, and `compileTypedFunctionSpec` checks them without zod.
 */
export const INT_BOUNDS = {
  port: [1, 65535],
  /** Milli-CPU requested per sandbox. */
  cpuMilli: [0, Number.MAX_SAFE_INTEGER],
  /** MiB requested per sandbox. */
  memoryMib: [0, Number.MAX_SAFE_INTEGER],
  /** Requests one sandbox serves at once; 0 = unlimited. */
  concurrency: [0, 10_000],
  minScale: [0, 100_000],
  /** Upper bound on sandboxes; null = unbounded. */
  maxScale: [1, 100_000],
  coldStartTimeoutMs: [1, 3_600_000],
  timeoutMs: [1, MAX_EXECUTION_TIMEOUT_MS],
  /** Asynchronous invocations: attempts before one is dead-lettered. */
  asyncAttempts: [1, 100],
  /** Asynchronous invocations: wait before the second attempt, doubled for each next one. */
  asyncBackoffMs: [0, 3_600_000],
} as const satisfies Record<string, readonly [number, number]>;
type IntField = keyof typeof INT_BOUNDS;
const INT_FIELDS = Object.keys(INT_BOUNDS) as IntField[];

const int = (field: IntField) =>
  z.number().superRefine(checkedBy((v: number) => intFault(v, INT_BOUNDS[field])));

/** Stored and exchanged form of a function. All fields are present after `compileFunctionSpec`. */
export const functionSpecSchema = z
  .object({
    name: storedNameSchema,
    image: z.string().superRefine(checkedBy(imageFault)),
    port: int('port'),
    protocol: z.enum(['tcp', 'udp']),
    cpuMilli: int('cpuMilli'),
    memoryMib: int('memoryMib'),
    concurrency: int('concurrency'),
    minScale: int('minScale'),
    maxScale: int('maxScale').nullable(),
    /** Dirigent's cold-start sweep preset: stable window 6 s, panic 2 s, upper bound 1. */
    coldStartSweep: z.boolean(),
    coldStartTimeoutMs: int('coldStartTimeoutMs'),
    /**
     * Longest one invocation may run once sent to a sandbox; past it the
     * client gets 504 and the sandbox is replaced. Specs stored before this
     * field existed read back with the default.
     */
    timeoutMs: int('timeoutMs').default(DEFAULT_EXECUTION_TIMEOUT_MS),
    env: z.record(z.string(), z.string()).superRefine(checkedBy(envFault)),
    /**
     * Names of secrets (secret-record.ts) each sandbox gets as environment
     * variables of those names. Specs stored before this field existed read
     * back with none.
     */
    secrets: z
      .array(envKey)
      .max(MAX_SECRETS, TOO_MANY_SECRETS)
      .refine(distinct, SECRET_TWICE)
      .default([]),
    args: z.array(z.string()),
    asyncAttempts: int('asyncAttempts').default(DEFAULT_ASYNC_ATTEMPTS),
    asyncBackoffMs: int('asyncBackoffMs').default(DEFAULT_ASYNC_BACKOFF_MS),
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
  return completeSpec(parsed.data);
}

/**
 * `compileFunctionSpec` for an input whose fields have their types already
 * (Dirigent's form: integers parsed, booleans and the protocol read): what
 * is left, bounds and patterns, is checked by the rules the schema reports
 * (above), without zod, whose parse of the whole object was about a
 * tenth of a registration on a control plane just started
 * (docs/benchmarks.md, Registrations). Same answers, same errors (a unit
 * test holds the two together).
 */
export function compileTypedFunctionSpec(input: FunctionSpecInput): FunctionSpec {
  for (const field of INT_FIELDS) {
    const v = input[field];
    if (v !== undefined && v !== null) refuse(field, intFault(v, INT_BOUNDS[field]));
  }
  refuse('image', imageFault(input.image));
  if (input.env !== undefined) refuse('env', envFault(input.env));
  const secrets = input.secrets ?? [];
  const bad = secrets.findIndex((k) => !ENV_NAME_PATTERN.test(k));
  if (bad >= 0) refuse(`secrets.${bad}`, ENV_NAME_RULE);
  if (secrets.length > MAX_SECRETS) refuse('secrets', TOO_MANY_SECRETS);
  if (!distinct(secrets)) refuse('secrets', SECRET_TWICE);
  return completeSpec(input);
}

/** Throws what is wrong with `field`, if anything. */
function refuse(field: string, reason: string | undefined): void {
  if (reason !== undefined) throw new InvalidArgumentError(reason, { field });
}

/** Checks the name a client gave, then applies defaults and cross-field rules. */
function completeSpec(v: FunctionSpecInput): FunctionSpec {
  if (v.name === undefined) throw new InvalidArgumentError('is required', { field: 'name' });
  refuse('name', nameFault(v.name));
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

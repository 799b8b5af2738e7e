/**
 * Options defined once: an OptionSpec holds an option's schema (which
 * validates, converts and holds the default) and its help; the flags, the
 * validation, the help text (options.ts) and what `baton up` passes on
 * (`forwarded`, `forwardArgs`) are derived from it.
 */
import { z } from 'zod';

/**
 * Numbers given as flag strings become numbers; a string that is not a
 * number is refused as such (`"lots" is not a number`), anything else is
 * left for the schema to reject.
 */
export const num = (schema: z.ZodNumber) =>
  z.preprocess((v, ctx) => {
    if (typeof v !== 'string') return v;
    if (/^-?\d+(\.\d+)?$/.test(v.trim())) return Number(v);
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a number` });
    return z.NEVER;
  }, schema);

/** An integer within [min, max], given as a number or a flag string. */
const intSchema = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  num(
    z
      .number()
      .int('must be a whole number')
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );

const portOption = (def: number) => intSchema(0, 65535).default(def);

const logLevelOption = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info');

/**
 * One option, defined once: its schema (which validates, converts and holds
 * the default) and its help. The flag for parseArgs, the validation schema,
 * the help text and what `baton up` forwards are all derived from it.
 */
export interface OptionSpec<S extends z.ZodType = z.ZodType> {
  readonly schema: S;
  readonly description: string;
  readonly valueName?: string;
  /** The default as --help shows it (when the schema's default is computed, in words). */
  readonly defaultText?: string;
  readonly short?: string;
  /** A flag that takes no value. */
  readonly boolean?: boolean;
  /** A flag that may be given more than once; its value is the list. */
  readonly multiple?: boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The values of a set of options, as validated. */
export type OptionValues<T extends OptionSpecs> = { [K in keyof T]: z.output<T[K]['schema']> };

interface Help {
  valueName?: string;
  defaultText?: string;
  short?: string;
}

/** An option of any schema (which holds its default, if any). */
export function option<S extends z.ZodType>(
  schema: S,
  description: string,
  help: Help = {},
): OptionSpec<S> {
  return { schema, description, ...help };
}

/** A string option with a default (`undefined`: none, the option is optional). */
export function stringOption<D extends string | undefined>(
  def: D,
  description: string,
  valueName: string,
  schema: z.ZodString = z.string().min(1),
): OptionSpec<D extends string ? z.ZodDefault<z.ZodString> : z.ZodOptional<z.ZodString>> {
  const s = def === undefined ? schema.optional() : schema.default(def);
  return option(s, description, {
    valueName,
    ...(def === undefined ? {} : { defaultText: def }),
  }) as never;
}

/** An integer option (given as a flag string) within [min, max], with a default or none. */
export function intOption<D extends number | undefined>(
  def: D,
  description: string,
  valueName: string,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
  defaultText?: string,
) {
  const n = intSchema(min, max);
  const s = def === undefined ? n.optional() : n.default(def);
  return option(s, description, {
    valueName,
    ...(defaultText !== undefined
      ? { defaultText }
      : def === undefined
        ? {}
        : { defaultText: String(def) }),
  }) as OptionSpec<D extends number ? z.ZodDefault<typeof n> : z.ZodOptional<typeof n>>;
}

/** A TCP port (0 = any free one). */
export function portSpec(def: number, description: string) {
  return option(portOption(def), description, { valueName: 'PORT', defaultText: String(def) });
}

/** A HOST:PORT address. */
export function addressSpec(def: string, description: string) {
  const schema = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT');
  return option(schema.default(def), description, { valueName: 'HOST:PORT', defaultText: def });
}

/** HOST:PORT, or several separated by commas (`splitAddresses` reads it). */
export function addressListSpec(def: string, description: string) {
  const one = /^(\[[0-9a-fA-F:]+\]|[^:\s,]+):\d{1,5}$/;
  const schema = z
    .string()
    .refine(
      (v) => v.split(',').every((a) => one.test(a.trim())),
      'must be HOST:PORT, or several separated by commas',
    );
  return option(schema.default(def), description, {
    valueName: 'HOST:PORT[,...]',
    defaultText: def,
  });
}

/** One of `values`; anything else is `unknown NOUN "X" (expected one of ...)`. */
export function enumOption<
  V extends readonly [string, ...string[]],
  D extends V[number] | undefined,
>(values: V, def: D, description: string, valueName: string, noun: string) {
  const e = z
    .string()
    .superRefine((v, ctx) => {
      if (!values.includes(v))
        ctx.addIssue({
          code: 'custom',
          message: `unknown ${noun} "${v}" (expected one of ${values.join(', ')})`,
        });
    })
    .transform((v) => v as V[number]);
  const s = def === undefined ? e.optional() : e.default(def as never);
  return option(s, description, {
    valueName,
    ...(def === undefined ? {} : { defaultText: def }),
  }) as OptionSpec<D extends string ? z.ZodDefault<typeof e> : z.ZodOptional<typeof e>>;
}

export function booleanOption(
  description: string,
  short?: string,
): OptionSpec<z.ZodDefault<z.ZodBoolean>> {
  return {
    schema: z.boolean().default(false),
    description,
    boolean: true,
    ...(short === undefined ? {} : { short }),
  };
}

/** A string flag that may be repeated; its value is the list given (empty when none). */
export function listOption(
  description: string,
  valueName: string,
  short?: string,
): OptionSpec<z.ZodDefault<z.ZodArray<z.ZodString>>> {
  return {
    schema: z.array(z.string()).default([]),
    description: `${description} (repeatable)`,
    valueName,
    multiple: true,
    ...(short === undefined ? {} : { short }),
  };
}

/** Where `baton up` keeps the store, logs and secrets unless told otherwise ($BATON_DATA_DIR for the CLI). */
export const DEFAULT_DATA_DIR = './.baton';

export const HELP_OPTION = { help: booleanOption('show this help', 'h') } satisfies OptionSpecs;

/** Options of every daemon that serves or calls internal RPC (see rpc/cluster-token.ts). */
export const CLUSTER_TOKEN_OPTIONS = {
  'cluster-token-file': stringOption(
    undefined,
    "file holding the cluster's token for internal RPC, mode 600 (default: $BATON_CLUSTER_TOKEN)",
    'FILE',
  ),
} satisfies OptionSpecs;

/** TLS on a daemon's public port (the control plane's API, a data plane's proxy); see loadTls. */
export const TLS_OPTIONS = {
  'tls-cert-file': stringOption(
    undefined,
    'PEM certificate (chain) for TLS on the public port; with --tls-key-file',
    'FILE',
  ),
  'tls-key-file': stringOption(
    undefined,
    "PEM private key of --tls-cert-file's certificate",
    'FILE',
  ),
} satisfies OptionSpecs;

/** `--config`, `--log-level`, `--help`: every daemon's. */
export const COMMON_OPTIONS = {
  config: option(z.string().optional(), 'JSON file of options (keys = flag names); flags win', {
    valueName: 'FILE',
  }),
  'log-level': option(logLevelOption, 'fatal, error, warn, info, debug, trace or silent', {
    valueName: 'LEVEL',
    defaultText: 'info',
  }),
  ...HELP_OPTION,
} satisfies OptionSpecs;

/**
 * The same options for a supervisor that passes them on (`baton up`): each
 * optional (only what is given is passed on), with the same help.
 */
export function forwarded<T extends OptionSpecs, K extends keyof T & string>(
  specs: T,
  names: readonly K[],
  /** Put before each description, e.g. `data plane: `. */
  prefix = '',
): { [P in K]: OptionSpec<z.ZodOptional<T[P]['schema']>> } {
  const out: Record<string, OptionSpec> = {};
  for (const name of names) {
    const s = specs[name]!;
    out[name] = {
      ...s,
      description: `${prefix}${s.description}`,
      schema: unwrapDefault(s.schema).optional(),
    };
  }
  return out as never;
}

/** The flags that pass on the given values of `names` (those that are set). */
export function forwardArgs(
  values: Record<string, string | number | boolean | undefined>,
  names: readonly string[],
): string[] {
  const args: string[] = [];
  for (const name of names) {
    const v = values[name];
    if (v === undefined || v === false) continue;
    args.push(`--${name}`);
    if (v !== true) args.push(String(v));
  }
  return args;
}

function unwrapDefault(schema: z.ZodType): z.ZodType {
  return schema instanceof z.ZodDefault ? (schema.unwrap() as z.ZodType) : schema;
}

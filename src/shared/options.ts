/**
 * Options in, compiled once. Flags (node:util parseArgs) and an optional JSON
 * config file (keys = flag names without dashes) are merged, flags winning,
 * then validated by a strict zod schema whose keys are the flag names. Every
 * error names the option: `--proxy-port: must be at most 65535`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { InvalidConfigError, errorMessage } from './errors.js';

export interface FlagSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** One line for --help. */
  description: string;
  /** Shown in --help. */
  defaultText?: string;
  /** Value name in --help, e.g. PORT. */
  valueName?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface ParsedFlags {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseFlags(
  argv: string[],
  specs: FlagSpecs,
  allowPositionals = false,
): ParsedFlags {
  const options: Record<
    string,
    { type: 'string' | 'boolean'; multiple?: boolean; short?: string }
  > = {};
  for (const [name, s] of Object.entries(specs)) {
    options[name] = {
      type: s.type,
      ...(s.multiple === true ? { multiple: true } : {}),
      ...(s.short === undefined ? {} : { short: s.short }),
    };
  }
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      strict: true,
      allowPositionals,
    });
    return { values: values as ParsedFlags['values'], positionals };
  } catch (err) {
    throw new InvalidConfigError(errorMessage(err).replace(/^TypeError( \[\w+\])?: /, ''));
  }
}

/** Reads a JSON config file whose keys are flag names. */
function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(`--config: cannot read ${path}: ${errorMessage(err)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new InvalidConfigError(`--config: ${path} is not valid JSON: ${errorMessage(err)}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidConfigError(`--config: ${path} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

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

/**
 * Merges config file and flags (flags win) and validates. `config` and
 * `help` flags are consumed here.
 */
export function compileOptions<S extends z.ZodObject>(
  schema: S,
  flags: ParsedFlags['values'],
): z.output<S> {
  const { config, help: _help, ...given } = flags;
  const fromFile = typeof config === 'string' ? readConfigFile(config) : {};
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [k, v] of Object.entries(given)) if (v !== undefined) merged[k] = v;
  const parsed = schema.strict().safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      throw new InvalidConfigError(`--config: unknown option(s) ${issue.keys.join(', ')}`);
    }
    const key = issue.path.join('.');
    throw new InvalidConfigError(`--${key}: ${issue.message}`);
  }
  return parsed.data as z.output<S>;
}

export function formatHelp(usage: string, summary: string, specs: FlagSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  ${s.short === undefined ? '    ' : `-${s.short}, `}--${name}${s.type === 'string' ? ` ${s.valueName ?? 'VALUE'}` : ''}`;
    const right = `${s.description}${s.defaultText === undefined ? '' : ` (default: ${s.defaultText})`}`;
    return [left, right] as const;
  });
  const width = Math.min(38, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, r]) =>
    l.length >= width ? `${l}\n${' '.repeat(width)}${r}` : l.padEnd(width) + r,
  );
  return `Usage: ${usage}\n\n${summary}\n\nOptions:\n${lines.join('\n')}\n`;
}

const logLevelOption = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info');

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(i + 1)) };
}

// ---- options defined once -----------------------------------------------------

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

export const HELP_OPTION = { help: booleanOption('show this help', 'h') } satisfies OptionSpecs;

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

/** The parseArgs and --help view of option specs. */
export function flagSpecsOf(specs: OptionSpecs): FlagSpecs {
  const out: FlagSpecs = {};
  for (const [name, s] of Object.entries(specs))
    out[name] = {
      type: s.boolean === true ? 'boolean' : 'string',
      ...(s.multiple === true ? { multiple: true } : {}),
      description: s.description,
      ...(s.defaultText === undefined ? {} : { defaultText: s.defaultText }),
      ...(s.valueName === undefined ? {} : { valueName: s.valueName }),
      ...(s.short === undefined ? {} : { short: s.short }),
    };
  return out;
}

/**
 * Reads `argv`'s flags for these options: undefined after printing the help
 * for `--help`. Throws InvalidConfigError for an unknown or malformed flag.
 */
export function readFlags(
  argv: string[],
  specs: OptionSpecs,
  usage: string,
  summary: string,
): ParsedFlags['values'] | undefined {
  return readArgs(argv, specs, usage, summary, false)?.values;
}

function readArgs(
  argv: string[],
  specs: OptionSpecs,
  usage: string,
  summary: string,
  allowPositionals: boolean,
): ParsedFlags | undefined {
  const flags = flagSpecsOf(specs);
  const parsed = parseFlags(argv, flags, allowPositionals);
  if (parsed.values.help !== true) return parsed;
  process.stdout.write(formatHelp(usage, summary, flags));
  return undefined;
}

/** A command's options and its arguments, validated. */
export interface Command<T extends OptionSpecs> {
  options: OptionValues<T>;
  args: string[];
}

/**
 * Reads a command line of options and `args` arguments (a count, or `any`):
 * undefined after printing the help for `--help`. Throws InvalidConfigError
 * naming the bad option, or giving the usage for the wrong arguments.
 */
export function readCommand<T extends OptionSpecs>(
  argv: string[],
  specs: T,
  usage: string,
  summary: string,
  args: number | 'any',
  argsName = 'arguments',
): Command<T> | undefined {
  const parsed = readArgs(argv, specs, usage, summary, args !== 0);
  if (parsed === undefined) return undefined;
  if (args !== 'any' && parsed.positionals.length !== args)
    throw new InvalidConfigError(
      `expected ${args === 0 ? 'no arguments' : argsName}; usage: ${usage}`,
    );
  return { options: compileSpecs(specs, parsed.values), args: parsed.positionals };
}

/**
 * Validates flag values against the specs, merging `--config` (flags win).
 * Throws InvalidConfigError naming the bad option.
 */
export function compileSpecs<T extends OptionSpecs>(
  specs: T,
  values: ParsedFlags['values'],
): OptionValues<T> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, s] of Object.entries(specs))
    if (name !== 'config' && name !== 'help') shape[name] = s.schema;
  return compileOptions(z.object(shape), values) as OptionValues<T>;
}

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

/**
 * Options in, compiled once. Flags (node:util parseArgs) and an optional JSON
 * config file (keys = flag names without dashes) are merged, flags winning,
 * then validated by a strict zod schema whose keys are the flag names. Every
 * error names the option: `--proxy-port: must be at most 65535`.
 */
import { closest, distance } from 'fastest-levenshtein';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { InvalidConfigError, errorMessage } from './errors.js';
import type { OptionSpecs, OptionValues } from './option-specs.js';

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
    const reason = errorMessage(err).replace(/^TypeError( \[\w+\])?: /, '');
    const unknown = /^Unknown option '(--?[^']+)'/.exec(reason)?.[1];
    if (unknown === undefined) throw new InvalidConfigError(reason);
    // A misspelling: name the option meant, as git and npm do.
    const meant = nearest(unknown.replace(/^--?/, '').split('=')[0]!, Object.keys(specs));
    throw new InvalidConfigError(
      meant !== undefined
        ? `unknown option '${unknown}'; did you mean --${meant}? (see --help)`
        : `unknown option '${unknown}' (see --help)`,
    );
  }
}

/** The name among `names` that `typed` is likely a misspelling of (a few edits away), if any. */
export function nearest(typed: string, names: string[]): string | undefined {
  if (names.length === 0) return undefined;
  // Two letters swapped ("lgos") are two edits but one slip.
  const letters = (w: string) => [...w].sort().join('');
  const swapped = names.find((n) => letters(n) === letters(typed) && distance(n, typed) <= 2);
  if (swapped !== undefined) return swapped;
  const meant = closest(typed, names);
  return distance(typed, meant) <= Math.max(1, Math.floor(meant.length / 3)) ? meant : undefined;
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

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(i + 1)) };
}

/** The addresses of an addressListSpec option. */
export function splitAddresses(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((a) => splitAddress(a.trim()));
}

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

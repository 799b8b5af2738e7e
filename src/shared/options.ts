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
export function readConfigFile(path: string): Record<string, unknown> {
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

/** Numbers given as flag strings become numbers; anything else is left for the schema to reject. */
export const num = (schema: z.ZodNumber) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v),
    schema,
  );

export const portOption = (def: number) => num(z.number().int().min(0).max(65535)).default(def);

/** host:port */
export const addressOption = (def: string) =>
  z
    .string()
    .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'must be HOST:PORT')
    .default(def);

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

export const COMMON_FLAGS: FlagSpecs = {
  config: {
    type: 'string',
    description: 'JSON file of options (keys = flag names); flags win',
    valueName: 'FILE',
  },
  'log-level': {
    type: 'string',
    description: 'fatal, error, warn, info, debug, trace or silent',
    defaultText: 'info',
    valueName: 'LEVEL',
  },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export const logLevelOption = z
  .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  .default('info');

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(address.slice(i + 1)) };
}

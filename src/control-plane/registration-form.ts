/**
 * Dirigent's registration form (`POST /registerService`, fields in the query
 * string or an urlencoded body) to a FunctionSpec. Unknown fields are ignored,
 * as Dirigent does; known fields with bad values are a 400 naming the field.
 */
import { InvalidArgumentError } from '../shared/errors.js';
import {
  compileTypedFunctionSpec,
  type FunctionSpec,
  type FunctionSpecInput,
} from '../shared/function-spec.js';

/**
 * The form's fields: the query string's, then the body's (urlencoded, or
 * sent without a content type), parsed once.
 */
export function formOf(query: string, body: string, contentType: string): URLSearchParams {
  const urlencoded =
    contentType === '' || contentType.startsWith('application/x-www-form-urlencoded');
  if (body.length > 0 && !urlencoded)
    throw new InvalidArgumentError(
      `content-type must be application/x-www-form-urlencoded, not ${contentType}`,
    );
  return new URLSearchParams(query === '' ? body : body === '' ? query : `${query}&${body}`);
}

export function specFromForm(form: URLSearchParams): FunctionSpec {
  const name = form.get('name');
  if (name === null || name === '') throw new InvalidArgumentError('name: is required');
  const image = form.get('image');
  if (image === null || image === '') throw new InvalidArgumentError('image: is required');
  const forwarding = form.getAll('port_forwarding');
  if (forwarding.length === 0) {
    throw new InvalidArgumentError('port_forwarding: is required (the port, then tcp or udp)');
  }
  const port = intField('port_forwarding', forwarding[0]!);
  const protocol = forwarding[1] ?? 'tcp';
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new InvalidArgumentError(`port_forwarding: protocol "${protocol}" must be tcp or udp`);
  }
  const input: FunctionSpecInput = { name, image, port, protocol };
  const optInt = (field: string) => {
    const v = form.get(field);
    return v === null || v === '' ? undefined : intField(field, v);
  };
  const cpu = optInt('requested_cpu');
  if (cpu !== undefined) input.cpuMilli = cpu;
  const memory = optInt('requested_memory');
  if (memory !== undefined) input.memoryMib = memory;
  const upper = optInt('scaling_upper_bound');
  if (upper !== undefined) {
    if (upper < 1)
      throw new InvalidArgumentError(`scaling_upper_bound: ${upper} must be at least 1`);
    input.maxScale = upper;
  }
  const lower = optInt('scaling_lower_bound');
  if (lower !== undefined) input.minScale = lower;
  if (lower !== undefined && upper !== undefined && lower > upper) {
    throw new InvalidArgumentError(
      `scaling_lower_bound (${lower}) must not exceed scaling_upper_bound (${upper})`,
    );
  }
  const concurrency = optInt('container_concurrency') ?? optInt('concurrency');
  if (concurrency !== undefined) input.concurrency = concurrency;
  const timeout = optInt('cold_start_timeout_ms');
  if (timeout !== undefined) input.coldStartTimeoutMs = timeout;
  const sweep = form.get('cold_start_sweep');
  if (sweep !== null && sweep !== '') input.coldStartSweep = boolField('cold_start_sweep', sweep);
  const env = form.getAll('env_vars').filter((e) => e !== '');
  if (env.length > 0) {
    input.env = {};
    for (const kv of env) {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new InvalidArgumentError(`env_vars: "${kv}" is not NAME=VALUE`);
      input.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  const args = form.getAll('program_args').filter((a) => a !== '');
  if (args.length > 0) input.args = args;
  try {
    return compileTypedFunctionSpec(input);
  } catch (err) {
    if (!(err instanceof InvalidArgumentError)) throw err;
    // Name the form field the user sent, not the spec field.
    const field = err.field === undefined ? undefined : FORM_FIELD_OF[err.field];
    throw field === undefined ? err : new InvalidArgumentError(err.reason, { field });
  }
}

const FORM_FIELD_OF: Record<string, string> = {
  port: 'port_forwarding',
  cpuMilli: 'requested_cpu',
  memoryMib: 'requested_memory',
  minScale: 'scaling_lower_bound',
  maxScale: 'scaling_upper_bound',
  concurrency: 'container_concurrency',
  coldStartTimeoutMs: 'cold_start_timeout_ms',
  env: 'env_vars',
  args: 'program_args',
};

function intField(field: string, raw: string): number {
  const v = raw.trim();
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`${field}: "${raw}" is not an integer`);
  return Number(v);
}

function boolField(field: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`${field}: "${raw}" is not true or false`);
}

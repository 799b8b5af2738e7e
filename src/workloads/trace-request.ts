/**
 * What an InVitro workload request asks for, read from its headers. Free of
 * Node APIs: the process sandboxes use it, and so does the code that runs
 * inside V8 isolates (src/workloads/isolate-builtin.ts).
 */
import { workloadFromHeader, type WorkloadKind } from '../shared/builtin-images.js';

/** Largest execution a single request may ask for (1 h), and memory (16 GiB). */
const MAX_REQUESTED_MS = 3_600_000;
const MAX_REQUESTED_MIB = 16 * 1024;

export type HeaderGetter = (name: string) => string | undefined;

export interface WorkloadReply {
  status: number;
  contentType: string;
  body: string;
}

export interface TraceRequest {
  kind: WorkloadKind;
  /** Function name the caller gave (`function` header), else the sandbox's. */
  fn: string;
  cpuMs: number;
  memoryMib: number;
}

/** The request, or the 400 reply for a malformed one. */
export function readTraceRequest(
  header: HeaderGetter,
  defaults: { kind: WorkloadKind; functionName: string },
): TraceRequest | WorkloadReply {
  const kind = workloadFromHeader(header('workload')) ?? defaults.kind;
  const fn = header('function') ?? defaults.functionName;
  if (kind !== 'trace') return { kind, fn, cpuMs: 0, memoryMib: 0 };
  const cpuMs = parseIntHeader(header, 'requested_cpu', MAX_REQUESTED_MS);
  if (typeof cpuMs === 'string') return text(400, cpuMs);
  const memoryMib = parseIntHeader(header, 'requested_memory', MAX_REQUESTED_MIB);
  if (typeof memoryMib === 'string') return text(400, memoryMib);
  const multiplier = parseIntHeader(header, 'multiplier', Number.MAX_SAFE_INTEGER);
  if (typeof multiplier === 'string') return text(400, multiplier);
  return { kind, fn, cpuMs, memoryMib };
}

export function isReply(r: TraceRequest | WorkloadReply): r is WorkloadReply {
  return 'status' in r;
}

/** The reply of the empty function. */
export function emptyReply(fn: string, machineName: string): WorkloadReply {
  return json(200, {
    Status: 'OK - EMPTY',
    Function: fn,
    MachineName: machineName,
    ExecutionTime: 0,
  });
}

/** The reply of the trace function after `elapsedUs` of execution. */
export function traceReply(fn: string, machineName: string, elapsedUs: number): WorkloadReply {
  return json(200, {
    Status: 'OK',
    Function: fn,
    MachineName: machineName,
    ExecutionTime: elapsedUs,
  });
}

export function helloText(
  functionName: string,
  sandboxId: string,
  machineName: string,
  where: string,
): string {
  return `Hello from ${functionName} (sandbox ${sandboxId} on ${machineName}, ${where})\n`;
}

function parseIntHeader(header: HeaderGetter, name: string, max: number): number | string {
  const raw = header(name);
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw.trim())) return `${name}: "${raw}" is not a non-negative integer\n`;
  const n = Number(raw.trim());
  if (n > max) return `${name}: ${n} is outside 0..${max}\n`;
  return n;
}

function json(status: number, value: unknown): WorkloadReply {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}

export function text(status: number, body: string): WorkloadReply {
  return { status, contentType: 'text/plain; charset=utf-8', body };
}

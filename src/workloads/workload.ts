/**
 * The behaviour of the built-in functions, independent of any server:
 * InVitro's trace function (execute for `requested_cpu` ms, touch
 * `requested_memory` MiB, report the execution time in µs), the empty
 * function, and hello.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { workloadFromHeader, type ExecutionMode, type WorkloadKind } from './builtin-images.js';

export interface WorkloadContext {
  kind: WorkloadKind;
  execution: ExecutionMode;
  functionName: string;
  machineName: string;
  sandboxId: string;
}

export interface WorkloadReply {
  status: number;
  contentType: string;
  body: string;
}

/** Largest execution a single request may ask for (1 h), and memory (16 GiB). */
const MAX_REQUESTED_MS = 3_600_000;
const MAX_REQUESTED_MIB = 16 * 1024;

type HeaderGetter = (name: string) => string | undefined;

export async function runWorkload(
  ctx: WorkloadContext,
  header: HeaderGetter,
): Promise<WorkloadReply> {
  const kind = workloadFromHeader(header('workload')) ?? ctx.kind;
  const fn = header('function') ?? ctx.functionName;
  if (kind === 'hello') {
    return text(
      200,
      `Hello from ${ctx.functionName} (sandbox ${ctx.sandboxId} on ${ctx.machineName}, pid ${process.pid})\n`,
    );
  }
  if (kind === 'empty')
    return json(200, {
      Status: 'OK - EMPTY',
      Function: fn,
      MachineName: ctx.machineName,
      ExecutionTime: 0,
    });

  const cpuMs = parseIntHeader(header, 'requested_cpu', 0, MAX_REQUESTED_MS);
  if (typeof cpuMs === 'string') return text(400, cpuMs);
  const memoryMib = parseIntHeader(header, 'requested_memory', 0, MAX_REQUESTED_MIB);
  if (typeof memoryMib === 'string') return text(400, memoryMib);
  const multiplier = parseIntHeader(header, 'multiplier', 0, Number.MAX_SAFE_INTEGER);
  if (typeof multiplier === 'string') return text(400, multiplier);

  const start = process.hrtime.bigint();
  if (ctx.execution === 'sleep') {
    // Timers run off the event loop's cached clock and can fire up to a
    // millisecond early by hrtime; sleep again until the full time has passed.
    const end = start + BigInt(Math.round(cpuMs * 1e6));
    for (let left = end - process.hrtime.bigint(); left > 0n; left = end - process.hrtime.bigint())
      await sleep(Math.ceil(Number(left) / 1e6));
  } else {
    touchMemory(memoryMib);
    burnCpu(cpuMs);
  }
  const elapsedUs = Number((process.hrtime.bigint() - start) / 1000n);
  return json(200, {
    Status: 'OK',
    Function: fn,
    MachineName: ctx.machineName,
    ExecutionTime: elapsedUs,
  });
}

/** Busy-loops on square roots (InVitro's SQRTSD loop) until `ms` have passed. */
export function burnCpu(ms: number): number {
  if (ms <= 0) return 0;
  const end = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  let acc = 0;
  let x = 1;
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 1000; i++) acc += Math.sqrt((x = (x * 1.000001) % 1e9));
  }
  return acc;
}

function touchMemory(mib: number): void {
  if (mib <= 0) return;
  const buf = Buffer.allocUnsafe(mib * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 4096) buf[i] = 1;
}

function parseIntHeader(
  header: HeaderGetter,
  name: string,
  min: number,
  max: number,
): number | string {
  const raw = header(name);
  if (raw === undefined || raw === '') return 0;
  if (!/^\d+$/.test(raw.trim())) return `${name}: "${raw}" is not a non-negative integer\n`;
  const n = Number(raw.trim());
  if (n < min || n > max) return `${name}: ${n} is outside ${min}..${max}\n`;
  return n;
}

function json(status: number, value: unknown): WorkloadReply {
  return { status, contentType: 'application/json', body: JSON.stringify(value) };
}

function text(status: number, body: string): WorkloadReply {
  return { status, contentType: 'text/plain; charset=utf-8', body };
}

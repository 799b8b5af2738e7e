/**
 * The behaviour of the built-in functions, independent of any server:
 * InVitro's trace function (execute for `requested_cpu` ms, touch
 * `requested_memory` MiB, report the execution time in µs), the empty
 * function, and hello.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionMode, WorkloadKind } from '../shared/builtin-images.js';
import {
  emptyReply,
  helloText,
  isReply,
  readTraceRequest,
  text,
  traceReply,
  type HeaderGetter,
  type WorkloadReply,
} from './trace-request.js';

export interface WorkloadContext {
  kind: WorkloadKind;
  execution: ExecutionMode;
  functionName: string;
  machineName: string;
  sandboxId: string;
}

export async function runWorkload(
  ctx: WorkloadContext,
  header: HeaderGetter,
): Promise<WorkloadReply> {
  const req = readTraceRequest(header, ctx);
  if (isReply(req)) return req;
  if (req.kind === 'hello')
    return text(
      200,
      helloText(ctx.functionName, ctx.sandboxId, ctx.machineName, `pid ${process.pid}`),
    );
  if (req.kind === 'empty') return emptyReply(req.fn, ctx.machineName);

  const start = process.hrtime.bigint();
  if (ctx.execution === 'sleep') {
    // Timers run off the event loop's cached clock and can fire up to a
    // millisecond early by hrtime; sleep again until the full time has passed.
    const end = start + BigInt(Math.round(req.cpuMs * 1e6));
    for (let left = end - process.hrtime.bigint(); left > 0n; left = end - process.hrtime.bigint())
      await sleep(Math.ceil(Number(left) / 1e6));
  } else {
    touchMemory(req.memoryMib);
    burnCpu(req.cpuMs);
  }
  return traceReply(req.fn, ctx.machineName, Number((process.hrtime.bigint() - start) / 1000n));
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

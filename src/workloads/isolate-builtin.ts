/**
 * The built-in images (`trace`, `simulated-trace`, `empty`, `hello`) as a
 * handler that runs inside a V8 isolate: the same replies as the process
 * sandboxes give (src/workloads/workload.ts). `trace` burns CPU in the
 * isolate and touches its memory there; `simulated-trace` waits on a timer.
 * Bundled by esbuild for the isolate runtimes; never runs in Node.
 */
import { builtinImage } from '../shared/builtin-images.js';
import { SANDBOX_ENV } from '../shared/sandbox-environment.js';
import {
  emptyReply,
  helloText,
  isReply,
  readTraceRequest,
  text,
  traceReply,
  type WorkloadReply,
} from './trace-request.js';

export default async function builtin(
  request: Request,
  env: Readonly<Record<string, string>>,
): Promise<Response> {
  const image = builtinImage(env[SANDBOX_ENV.image] ?? '') ?? { kind: 'trace', execution: 'burn' };
  const functionName = env[SANDBOX_ENV.functionName] ?? 'function';
  const machineName = env[SANDBOX_ENV.machineName] ?? 'baton';
  const req = readTraceRequest((name) => request.headers.get(name) ?? undefined, {
    kind: image.kind,
    functionName,
  });
  if (isReply(req)) return reply(req);
  if (req.kind === 'hello')
    return reply(
      text(
        200,
        helloText(functionName, env[SANDBOX_ENV.sandboxId] ?? '', machineName, 'in a V8 isolate'),
      ),
    );
  if (req.kind === 'empty') return reply(emptyReply(req.fn, machineName));

  const start = performance.now();
  if (image.execution === 'sleep') {
    for (let left = req.cpuMs; left > 0; left = start + req.cpuMs - performance.now())
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(left)));
  } else {
    touchMemory(req.memoryMib);
    burnCpu(req.cpuMs);
  }
  return reply(traceReply(req.fn, machineName, Math.round((performance.now() - start) * 1000)));
}

/**
 * InVitro's loop of square roots until `ms` have passed. It watches Date.now
 * (whole milliseconds, but native to V8) rather than performance.now, which
 * is a call out to the worker; one millisecond more makes sure `ms` passed.
 */
function burnCpu(ms: number): number {
  if (ms <= 0) return 0;
  const deadline = Date.now() + ms + 1;
  let acc = 0;
  let x = 1;
  while (Date.now() < deadline) {
    for (let i = 0; i < 1000; i++) acc += Math.sqrt((x = (x * 1.000001) % 1e9));
  }
  return acc;
}

function touchMemory(mib: number): void {
  if (mib <= 0) return;
  const buf = new Uint8Array(mib * 1024 * 1024);
  for (let i = 0; i < buf.length; i += 4096) buf[i] = 1;
}

function reply(r: WorkloadReply): Response {
  return new Response(r.body, { status: r.status, headers: { 'content-type': r.contentType } });
}

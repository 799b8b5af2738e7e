/**
 * The isolated-vm addon (an optional native dependency, loaded on first
 * use) and the compilation every isolate shares: eager compilation, and V8
 * code caches by script, so that only the first isolate to run a script
 * compiles it in full.
 */
import { setFlagsFromString } from 'node:v8';
import type IsolatedVm from 'isolated-vm';

export type Ivm = typeof IsolatedVm;

let ivmLoad: Promise<Ivm> | undefined;

/**
 * V8 compiles a function when it first runs unless told to compile eagerly,
 * and a code cache holds only what was compiled. With lazy compilation every
 * fresh isolate compiled the prelude's and handler's functions again on its
 * first request, most of that request's dispatch (docs/benchmarks.md). The flag is
 * process-wide (V8 has no per-isolate switch, and rejects a cache made under
 * other flags), so it is set with the addon's loading, before the first
 * compilation in an isolate; the worker's own modules are loaded by then.
 */
function compileEagerly(): void {
  setFlagsFromString('--no-lazy');
}

/** isolated-vm is a native addon and an optional dependency: load it on first use. */
export function loadIvm(): Promise<Ivm> {
  ivmLoad ??= import('isolated-vm').then((m: { default?: Ivm }) => {
    compileEagerly();
    return m.default ?? (m as unknown as Ivm);
  });
  return ivmLoad;
}

/**
 * Code caches by script: every isolate runs the prelude, and every sandbox of
 * a function (and every function of one built-in image) the same program,
 * its environment handed in apart, so only the first compiles either in
 * full. The most recent few are kept.
 */
const codeCaches = new Map<string, IsolatedVm.ExternalCopy<ArrayBuffer>>();
const MAX_CODE_CACHES = 64;

function rememberCodeCache(code: string, cache: IsolatedVm.ExternalCopy<ArrayBuffer>): void {
  codeCaches.delete(code);
  codeCaches.set(code, cache);
  for (const oldest of codeCaches.keys()) {
    if (codeCaches.size <= MAX_CODE_CACHES) break;
    codeCaches.delete(oldest);
  }
}

/** Compiles `code` in `isolate` from its code cache, making the cache if there is none. */
export function compileCached(
  isolate: IsolatedVm.Isolate,
  code: string,
  filename: string,
  lineOffset = 0,
): IsolatedVm.Script {
  const cachedData = codeCaches.get(code);
  // The cache comes back on the script (isolated-vm's typings leave it out).
  const script: IsolatedVm.Script & IsolatedVm.CachedDataResult = isolate.compileScriptSync(code, {
    filename,
    lineOffset,
    // isolated-vm produces a cache only when there is none or V8 rejected
    // the one given (made under other flags).
    produceCachedData: true,
    ...(cachedData === undefined ? {} : { cachedData }),
  });
  if (script.cachedData !== undefined && script.cachedData !== cachedData)
    rememberCodeCache(code, script.cachedData);
  return script;
}

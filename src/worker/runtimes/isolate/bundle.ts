/**
 * The JavaScript an isolate runs, bundled by esbuild: the guest prelude (the
 * web APIs of src/guest/isolate/prelude.ts), which every isolate runs when
 * it is made, and a handler's module with everything it imports (TypeScript
 * compiled, relative imports and npm packages inlined), exposed as
 * `__baton_module`. Node's built-in modules do not exist in an isolate:
 * importing one is a start error that names it. Bundles are cached per file
 * and modification time.
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, type Message } from 'esbuild';
import { SandboxStartError } from '../../../shared/errors.js';
import { esbuildFailure } from '../module-check.js';

/** Global the handler's bundle assigns its exports to. */
export const MODULE_GLOBAL = '__baton_module';

/** Baton's own modules that run in an isolate, by path under src/ without extension. */
const GUEST_MODULES = {
  prelude: 'guest/isolate/prelude',
  builtin: 'workloads/isolate-builtin',
} as const;

/** A guest module of Baton's own, as source or built. */
export function guestModule(name: keyof typeof GUEST_MODULES): string {
  const isSource = import.meta.url.endsWith('.ts');
  const path = `../../../${GUEST_MODULES[name]}${isSource ? '.ts' : '.js'}`;
  return fileURLToPath(new URL(path, import.meta.url));
}

const cache = new Map<string, { mtimeMs: number; code: Promise<string> }>();

/** The prelude, as one classic script. */
export function bundlePrelude(): Promise<string> {
  return cachedBundle(guestModule('prelude'), undefined);
}

/** The handler at `entry`, as a classic script that assigns MODULE_GLOBAL. */
export function bundleHandler(entry: string): Promise<string> {
  return cachedBundle(entry, MODULE_GLOBAL);
}

function cachedBundle(entry: string, globalName: string | undefined): Promise<string> {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(entry).mtimeMs;
  } catch {
    return Promise.reject(new SandboxStartError(`handler ${entry} does not exist`));
  }
  const hit = cache.get(entry);
  if (hit !== undefined && hit.mtimeMs === mtimeMs) return hit.code;
  const code = bundle(entry, globalName);
  cache.set(entry, { mtimeMs, code });
  // A failed bundle is not kept: the next creation tries again (the file may be fixed).
  code.catch(() => {
    if (cache.get(entry)?.code === code) cache.delete(entry);
  });
  return code;
}

async function bundle(entry: string, globalName: string | undefined): Promise<string> {
  try {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'iife',
      ...(globalName === undefined ? {} : { globalName }),
      platform: 'neutral',
      mainFields: ['browser', 'module', 'main'],
      conditions: ['worker', 'browser'],
      target: 'es2022',
      logLevel: 'silent',
      charset: 'utf8',
    });
    return out.outputFiles[0]!.text;
  } catch (err) {
    const failure = esbuildFailure(err, entry, 'cannot bundle handler');
    const missing = /"([^"]+)"/.exec((err as { errors?: Message[] }).errors?.[0]?.text ?? '')?.[1];
    const hint = /^node:|^(fs|path|os|http|https|net|child_process|crypto|stream|url|util)$/.test(
      missing ?? '',
    )
      ? ' (Node modules do not exist in an isolate; see docs/isolates.md)'
      : '';
    throw new SandboxStartError(`${failure.message}${hint}`);
  }
}

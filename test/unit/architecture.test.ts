/**
 * Dependency direction (docs/ARCHITECTURE.md): shared <- rpc, store <- daemon
 * internals <- main.ts; daemons never import each other; no import cycles.
 * Runtimes never import each other, and the control plane decides by what a
 * worker's runtime can do, never by its name. Files stay small enough to read.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(fileURLToPath(new URL('../../src', import.meta.url)));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const graph = new Map<string, string[]>();
for (const f of files(SRC)) {
  const text = readFileSync(f, 'utf8');
  const deps: string[] = [];
  for (const m of text.matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)) {
    deps.push(resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts')));
  }
  graph.set(f, deps);
}
const area = (f: string) => relative(SRC, f).split('/')[0]!;

/** The modules `f` loads when it is loaded: static imports, not `import type` nor `import()`. */
function loadedBy(f: string, seen = new Set<string>()): Set<string> {
  if (seen.has(f)) return seen;
  seen.add(f);
  const text = readFileSync(f, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)(?!\s+type\b)[^;]*?\sfrom\s+'(\.[^']+)'/gms))
    loadedBy(resolve(dirname(f), m[1]!.replace(/\.js$/, '.ts')), seen);
  return seen;
}

/** "A loads B" for each module B (under src/) that the module A it is listed under loads. */
function loadsAnyOf(rules: Record<string, string[]>): string[] {
  return Object.entries(rules).flatMap(([from, listed]) => {
    const loaded = loadedBy(join(SRC, from));
    return listed.filter((m) => loaded.has(join(SRC, m))).map((m) => `${from} loads ${m}`);
  });
}

describe('module structure', () => {
  it('has no import cycles', () => {
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'visiting') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(SRC, p)).join(' -> '));
        return;
      }
      state.set(f, 'visiting');
      for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    assert.deepEqual(cycles, []);
  });

  it('keeps daemons apart and the lower layers free of them', () => {
    const daemons = new Set(['control-plane', 'data-plane', 'worker']);
    const allowed: Record<string, Set<string>> = {
      shared: new Set(['shared']),
      rpc: new Set(['rpc', 'shared']),
      store: new Set(['store', 'shared']),
      workloads: new Set(['workloads', 'shared']),
      guest: new Set(['guest', 'workloads', 'shared']),
      loadgen: new Set(['loadgen', 'shared']),
      'control-plane': new Set(['control-plane', 'rpc', 'store', 'shared']),
      'data-plane': new Set(['data-plane', 'rpc', 'shared']),
      worker: new Set(['worker', 'rpc', 'shared', 'workloads', 'guest']),
      cli: new Set(['cli', 'shared', 'store', 'worker', 'control-plane', 'data-plane', 'loadgen']),
    };
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const from = area(f);
      for (const d of deps) {
        const to = area(d);
        if (!(allowed[from]?.has(to) ?? false))
          bad.push(`${relative(SRC, f)} imports ${relative(SRC, d)}`);
      }
      if (from === 'cli') {
        // The CLI reaches a daemon only through its main.ts and its option definitions
        // (`baton up` passes options on), or shared constants of the worker's port pool.
        for (const d of deps) {
          const to = area(d);
          if (
            daemons.has(to) &&
            !d.endsWith('/main.ts') &&
            !d.endsWith('-options.ts') &&
            !d.endsWith('worker/ports.ts')
          )
            bad.push(`${relative(SRC, f)} reaches into ${relative(SRC, d)}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it("answers a daemon's --help and option errors without loading the daemon", () => {
    // Loading a daemon took up to 1.1 s; its options alone about 0.3 s.
    const daemons = {
      'control-plane/main.ts': ['control-plane/control-plane.ts', 'control-plane/start.ts'],
      'data-plane/main.ts': ['data-plane/data-plane.ts', 'data-plane/start.ts'],
      'worker/main.ts': [
        'worker/daemon.ts',
        'worker/start.ts',
        'worker/runtimes/process/process-runtime.ts',
        'worker/runtimes/containerd/containerd-runtime.ts',
        'worker/runtimes/isolate/isolate-runtime.ts',
        'worker/runtimes/simulated/simulated-runtime.ts',
      ],
    };
    assert.deepEqual(loadsAnyOf(daemons), []);
  });

  it('loads a store backend or a runtime only once it is chosen', () => {
    // The etcd and Redis clients cost a control plane on the embedded store 25 MiB.
    const choosers = {
      'store/create-store.ts': ['store/embedded.ts', 'store/etcd.ts', 'store/redis.ts'],
      'control-plane/start.ts': ['store/etcd.ts', 'store/redis.ts'],
      'worker/runtimes/create-runtime.ts': [
        'worker/runtimes/process/process-runtime.ts',
        'worker/runtimes/containerd/containerd-runtime.ts',
        'worker/runtimes/isolate/pooled-isolate-runtime.ts',
        'worker/runtimes/isolate/per-request-isolate-runtime.ts',
        'worker/runtimes/simulated/simulated-runtime.ts',
      ],
    };
    assert.deepEqual(loadsAnyOf(choosers), []);
  });

  it('keeps each runtime to its own folder: no runtime imports another', () => {
    const RUNTIMES = join(SRC, 'worker', 'runtimes');
    const folder = (f: string) => {
      const parts = relative(RUNTIMES, f).split('/');
      return parts.length > 1 && !parts[0]!.startsWith('..') ? parts[0] : undefined;
    };
    const bad: string[] = [];
    for (const [f, deps] of graph) {
      const own = folder(f);
      if (own === undefined) continue;
      for (const d of deps) {
        const other = folder(d);
        if (other !== undefined && other !== own)
          bad.push(`${relative(SRC, f)} imports ${relative(SRC, d)}`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('names no runtime in the control plane', async () => {
    const { RUNTIME_NAMES } = await import('../../src/shared/runtime-names.js');
    const bad: string[] = [];
    for (const f of files(join(SRC, 'control-plane'))) {
      const text = readFileSync(f, 'utf8');
      if (/runtime-names\.js'/.test(text)) bad.push(`${relative(SRC, f)} imports runtime-names`);
      for (const name of RUNTIME_NAMES)
        if (text.includes(`'${name}'`) || text.includes(`"${name}"`))
          bad.push(`${relative(SRC, f)} names runtime ${name}`);
    }
    assert.deepEqual(bad, []);
  });

  it('has no source file over 400 lines', () => {
    const long = [...graph.keys()]
      .map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length - 1] as const)
      .filter(([, lines]) => lines > 400);
    assert.deepEqual(long, []);
  });
});

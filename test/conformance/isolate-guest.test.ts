/**
 * What a handler can and cannot do inside an isolate (docs/isolates.md),
 * checked against the real runtime: the web APIs of the prelude, bundling of
 * TypeScript and relative imports, env, console logs, and the clear start
 * error for Node modules.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/shared/logger.js';
import { SandboxStartError } from '../../src/shared/errors.js';
import { PortPool } from '../../src/worker/ports.js';
import { PooledIsolateRuntime } from '../../src/worker/runtimes/isolate/pooled-isolate-runtime.js';
import { spec } from '../helpers/specs.js';
import { isolatesUnsupported } from '../helpers/isolates.js';
import { httpRequest } from '../helpers/http.js';

const HANDLER = `
import { shout } from './lib/shout.ts';
interface Echo { name?: string }
export default async function handler(request: Request, env: Record<string, string>): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === '/redirect') return Response.redirect('http://example.test/next', 307);
  const body = request.method === 'POST' ? ((await request.json()) as Echo) : {};
  url.searchParams.append('added', 'a b');
  const headers = new Headers({ 'X-One': '1' });
  headers.append('x-one', '2');
  const bytes = new TextEncoder().encode('héllo ✓');
  await new Promise((resolve) => setTimeout(resolve, 5));
  console.log('handled', url.pathname);
  return Response.json(
    {
      name: shout(body.name ?? url.searchParams.get('name') ?? 'nobody'),
      search: url.search,
      host: url.host,
      one: headers.get('x-one'),
      roundTrip: new TextDecoder().decode(bytes),
      byteLength: bytes.length,
      fn: env.BATON_FUNCTION,
      greeting: env.GREETING,
      hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined',
      hasFetch: typeof (globalThis as { fetch?: unknown }).fetch !== 'undefined',
      elapsed: performance.now() >= 0,
    },
    { status: 201, headers: { 'x-handler': 'isolate' } },
  );
}
`;

describe('isolate guest environment', { skip: isolatesUnsupported }, () => {
  let rt: PooledIsolateRuntime;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-guest-'));
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'index.ts'), HANDLER);
    writeFileSync(
      join(dir, 'lib', 'shout.ts'),
      'export const shout = (s: string): string => s.toUpperCase();\n',
    );
    rt = new PooledIsolateRuntime({
      host: '127.0.0.1',
      ports: new PortPool(30300, 30399),
      logger: silentLogger(),
    });
    await rt.checkHost();
  });
  after(async () => {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a TypeScript handler with imports, web APIs, env and logs', async () => {
    const sb = await rt.create(
      'guest-1',
      spec({ name: 'guest-fn', image: dir, env: { GREETING: 'hi' } }),
    );
    const res = await httpRequest(`http://${sb.host}:${sb.port}/path?name=ada`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'grace' }),
    });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers['x-handler'], 'isolate');
    assert.match(String(res.headers['content-type']), /application\/json/);
    assert.deepEqual(JSON.parse(res.text), {
      name: 'GRACE',
      search: '?name=ada&added=a+b',
      host: `${sb.host}:${sb.port}`,
      one: '1, 2',
      roundTrip: 'héllo ✓',
      byteLength: 10,
      fn: 'guest-fn',
      greeting: 'hi',
      hasProcess: false,
      hasFetch: false,
      elapsed: true,
    });
    const redirect = await httpRequest(`http://${sb.host}:${sb.port}/redirect`);
    assert.equal(redirect.status, 307);
    assert.equal(redirect.headers.location, 'http://example.test/next');
    assert.match(rt.logs('guest-fn').find((o) => o.id === sb.id)?.text ?? '', /handled \/path/);
    await rt.delete(sb.id);
  });

  it('answers 500 with the reason when the handler throws, and keeps serving', async () => {
    writeFileSync(
      join(dir, 'throws.mjs'),
      'export default (req) => { if (req.url.endsWith("/bad")) throw new Error("no good"); return new Response("fine"); };\n',
    );
    const sb = await rt.create(
      'guest-2',
      spec({ name: 'guest-throws', image: join(dir, 'throws.mjs') }),
    );
    const bad = await httpRequest(`http://${sb.host}:${sb.port}/bad`);
    assert.equal(bad.status, 500);
    assert.match(bad.text, /no good/);
    assert.equal((await httpRequest(`http://${sb.host}:${sb.port}/`)).text, 'fine');
    await rt.delete(sb.id);
  });

  it("keeps the runtime's hooks from the handler, and logs from its top level", async () => {
    writeFileSync(
      join(dir, 'hooks.mjs'),
      [
        'console.log("loading");',
        'let again;',
        'try { __baton.boot(() => 0, () => null, () => {}, () => {}, () => {}, {}, () => ({}), undefined); again = "booted"; }',
        'catch (e) { again = e.message; }',
        'export default () => Response.json({ again, hooks: Object.getOwnPropertyNames(globalThis).filter((n) => n.startsWith("__bh")) });',
        '',
      ].join('\n'),
    );
    const sb = await rt.create(
      'guest-5',
      spec({ name: 'guest-hooks', image: join(dir, 'hooks.mjs') }),
    );
    const res = await httpRequest(`http://${sb.host}:${sb.port}/`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(res.text), {
      again: '__baton.boot: this isolate is booted already',
      hooks: [],
    });
    assert.match(rt.logs('guest-hooks').find((o) => o.id === sb.id)?.text ?? '', /loading/);
    // A Host header that makes no URL is the client's error, said in one line.
    const bad = await httpRequest(`http://${sb.host}:${sb.port}/`, {
      headers: { host: 'no such host' },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /^not a valid URL: host no such host, path \/\n$/);
    await rt.delete(sb.id);
  });

  it('refuses a handler that imports a Node module, naming it', async () => {
    writeFileSync(
      join(dir, 'node.mjs'),
      'import { readFileSync } from "node:fs";\nexport default () => new Response(readFileSync("/etc/hostname"));\n',
    );
    await assert.rejects(
      rt.create('guest-3', spec({ name: 'guest-node', image: join(dir, 'node.mjs') })),
      (err: Error) => {
        assert.ok(err instanceof SandboxStartError);
        assert.match(err.message, /node:fs/);
        assert.match(err.message, /Node modules do not exist in an isolate/);
        return true;
      },
    );
  });

  it('refuses a module whose default export is not a handler', async () => {
    writeFileSync(join(dir, 'nohandler.mjs'), 'export default 42;\n');
    await assert.rejects(
      rt.create('guest-4', spec({ name: 'guest-none', image: join(dir, 'nohandler.mjs') })),
      /default export must be a function/,
    );
  });
});

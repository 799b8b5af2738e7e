/** Small clients for Baton's HTTP surfaces, used by the integration tests. */
import { connect } from 'node:http2';
import { httpRequest, type SimpleResponse } from './http.js';

export function registerForm(
  registration: string,
  fields: Record<string, string | string[]>,
): Promise<SimpleResponse> {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields))
    for (const x of Array.isArray(v) ? v : [v]) form.append(k, x);
  return httpRequest(`${registration}/registerService`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
}

export function dirigentFields(
  name: string,
  image = 'trace',
  extra: Record<string, string> = {},
): Record<string, string | string[]> {
  return {
    name,
    image,
    port_forwarding: ['80', 'tcp'],
    requested_cpu: '1',
    requested_memory: '1',
    scaling_upper_bound: '10000',
    scaling_lower_bound: '0',
    ...extra,
  };
}

export function invoke(
  proxy: string,
  name: string,
  headers: Record<string, string> = {},
  path = '/',
): Promise<SimpleResponse> {
  return httpRequest(`${proxy}${path}`, { headers: { host: name, ...headers } });
}

/** Registers (or re-registers) a function through the JSON API. */
export function putFunction(
  registration: string,
  name: string,
  spec: object,
): Promise<SimpleResponse> {
  return httpRequest(`${registration}/v1/functions/${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
}

/** One request over cleartext HTTP/2 with prior knowledge (as InVitro sends). */
export function invokeH2(
  proxy: string,
  name: string,
  headers: Record<string, string> = {},
): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const session = connect(proxy);
    session.once('error', (err: Error) => reject(err));
    const req = session.request({ ':method': 'GET', ':path': '/', ':authority': name, ...headers });
    let text = '';
    let status = 0;
    let resHeaders: SimpleResponse['headers'] = {};
    req.setEncoding('utf8');
    req.once('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    req.on('data', (c: string) => (text += c));
    req.once('end', () => {
      session.close();
      resolve({ status, headers: resHeaders, text });
    });
    req.once('error', (err: Error) => {
      session.destroy();
      reject(err);
    });
    req.end();
  });
}

export interface FunctionInfo {
  spec: { name: string; image: string };
  sandboxes: number;
  creating: number;
  sandboxesCreated: number;
  inflight: number;
  queued: number;
  sandboxList: Array<{ id: string; worker: string; address: string | null; state: string }>;
  lastFailure: { code: string; message: string } | null;
}

export async function getFunction(
  registration: string,
  name: string,
): Promise<FunctionInfo | undefined> {
  const res = await httpRequest(`${registration}/v1/functions/${name}`);
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`GET function ${name}: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as FunctionInfo;
}

/** Polls until `check` returns true; bounded in time. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

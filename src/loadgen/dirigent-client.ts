/**
 * The control-plane side of a load generator, over the Dirigent-compatible
 * surface (docs/ARCHITECTURE.md, "Dirigent compatibility"): registration
 * forms, and Baton's `/v1/metrics` where the target offers it.
 */
import { request } from 'undici';
import { UnavailableError, errorMessage } from '../shared/errors.js';

/** A Dirigent registration form, as InVitro posts it. */
export function dirigentForm(
  name: string,
  image: string,
  extra: Record<string, string> = {},
  port: { number: number; protocol: string } = { number: 80, protocol: 'tcp' },
): URLSearchParams {
  const f = new URLSearchParams({
    name,
    image,
    requested_cpu: '1',
    requested_memory: '1',
    scaling_lower_bound: '0',
    ...extra,
  });
  f.append('port_forwarding', String(port.number));
  f.append('port_forwarding', port.protocol);
  if (!('scaling_upper_bound' in extra)) f.set('scaling_upper_bound', '10000');
  return f;
}

/**
 * POSTs registration forms to `/registerService`, `concurrency` at a time;
 * returns each one's latency in ms. The first refusal ends it with the
 * function's name and the target's reason.
 */
export async function registerMany(
  registration: string,
  forms: URLSearchParams[],
  concurrency: number,
): Promise<number[]> {
  const latencies = new Array<number>(forms.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < forms.length; i = next++) {
      const form = forms[i]!;
      const t0 = performance.now();
      let status: number;
      let text: string;
      try {
        const res = await request(`${registration}/registerService`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: form.toString(),
        });
        status = res.statusCode;
        text = await res.body.text();
      } catch (err) {
        throw new UnavailableError(
          `cannot reach the control plane at ${registration}: ${errorMessage(err)}`,
        );
      }
      if (status !== 200)
        throw new UnavailableError(
          `registering ${form.get('name') ?? `form ${i}`} failed: ${status} ${text.trim()}`,
        );
      latencies[i] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  return latencies;
}

/** What Baton's control plane reports at `/v1/metrics` (the fields a load generator reads). */
export interface ClusterMetrics {
  sandboxes: number;
  inflight: number;
  queued: number;
  sandboxesCreated: number;
}

/** Baton's control-plane `/v1/metrics`, or undefined when the target does not offer it. */
export async function clusterMetrics(registration: string): Promise<ClusterMetrics | undefined> {
  try {
    const res = await request(`${registration}/v1/metrics`, { headersTimeout: 5_000 });
    const text = await res.body.text();
    if (res.statusCode !== 200) return undefined;
    const m = JSON.parse(text) as Partial<ClusterMetrics>;
    if (typeof m.sandboxes !== 'number' || typeof m.sandboxesCreated !== 'number') return undefined;
    return {
      sandboxes: m.sandboxes,
      inflight: m.inflight ?? 0,
      queued: m.queued ?? 0,
      sandboxesCreated: m.sandboxesCreated,
    };
  } catch {
    return undefined;
  }
}

/** Waits until the cluster runs no sandbox and no request (scaled to zero). */
export async function waitForZero(registration: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await clusterMetrics(registration);
    if (m === undefined)
      throw new UnavailableError(`${registration}/v1/metrics does not report sandboxes`);
    if (m.sandboxes === 0 && m.inflight === 0) return;
    if (Date.now() > end)
      throw new UnavailableError(
        `the cluster did not scale to zero within ${timeoutMs / 1000} s: ${JSON.stringify(m)}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * RPS mode (InVitro's `Dirigent-RPS`): a constant rate of invocations for a
 * duration, every one a cold start or every one warm. Cold: each invocation
 * goes to its own function registered with the sweep preset (upper bound 1,
 * short windows), and before each step the cluster scales back to zero, so
 * each invocation finds no sandbox. Warm: one function, kept warm by a
 * second of the same load before the measured step. `baton loadgen rps` and
 * `npm run bench:cold` both run on this.
 */
import { H2cClient } from './h2c-client.js';
import { runOpenLoop, type ShotResult } from './open-loop.js';
import { failureSample, summarizeStep, type RateStep } from './stats.js';
import {
  clusterMetrics,
  dirigentForm,
  registerMany,
  waitForZero,
  type ClusterMetrics,
} from './dirigent-client.js';

export const RPS_MODES = ['cold', 'warm'] as const;
export type RpsMode = (typeof RPS_MODES)[number];

export interface RpsTarget {
  /** Control plane's HTTP address (registration), e.g. http://127.0.0.1:9091. */
  registration: string;
  /** Data plane's proxy address, e.g. http://127.0.0.1:8080. */
  proxy: string;
}

export interface RpsStep extends RateStep {
  /** Sandboxes the control plane created during the step (null: the target does not say). */
  cold_starts: number | null;
  failure_kinds: string[];
}

const REGISTRATION_CONCURRENCY = 32;

export class RpsRunner implements AsyncDisposable {
  readonly #target: RpsTarget;
  readonly #mode: RpsMode;
  readonly #image: string;
  readonly #client: H2cClient;
  #names: string[] = [];

  private constructor(target: RpsTarget, mode: RpsMode, image: string) {
    this.#target = target;
    this.#mode = mode;
    this.#image = image;
    this.#client = new H2cClient(target.proxy, 2);
  }

  /**
   * Registers the functions that steps of up to `maxInvocations` need (cold:
   * one per invocation; warm: one).
   */
  static async prepare(
    target: RpsTarget,
    mode: RpsMode,
    maxInvocations: number,
    image = 'empty',
    /** Starts the functions' names: runners of one target with different prefixes share none. */
    namePrefix = 'rps',
  ): Promise<RpsRunner> {
    const r = new RpsRunner(target, mode, image);
    const tag = imageTag(image);
    try {
      r.#names =
        mode === 'cold'
          ? Array.from({ length: maxInvocations }, (_, i) => `${namePrefix}-cold-${tag}-${i}`)
          : [`${namePrefix}-warm-${tag}`];
      // As InVitro registers its cold functions: the sweep preset, upper bound 1.
      const extra: Record<string, string> =
        mode === 'cold' ? { cold_start_sweep: 'true', scaling_upper_bound: '1' } : {};
      await registerMany(
        target.registration,
        r.#names.map((n) => dirigentForm(n, image, extra)),
        REGISTRATION_CONCURRENCY,
      );
    } catch (err) {
      await r.close();
      throw err;
    }
    return r;
  }

  /** A step: settle (below), then the measured load. */
  async step(rate: number, durationS: number): Promise<RpsStep> {
    await this.settle(rate);
    return this.measure(rate, durationS);
  }

  /**
   * What comes before a measured step, kept out of it: cold, the cluster
   * scales back to zero (a target that does not report its sandboxes, such
   * as Dirigent, cannot be waited for; each invocation's function is one
   * never invoked before anyway); warm, a second of the same load.
   */
  async settle(rate: number): Promise<void> {
    if (this.#mode === 'cold') {
      if ((await clusterMetrics(this.#target.registration)) !== undefined)
        await waitForZero(this.#target.registration);
    } else {
      await runOpenLoop({ rate, durationMs: 1000, send: () => this.#send(this.#names[0]!) });
    }
  }

  /** `rate` invocations per second for `durationS`, measured; call settle() first. */
  async measure(rate: number, durationS: number): Promise<RpsStep> {
    const durationMs = durationS * 1000;
    const needed = Math.floor(rate * durationS);
    const names = this.#names;
    if (this.#mode === 'cold' && needed > names.length)
      throw new RangeError(`a step of ${needed} cold starts needs ${needed} functions`);
    const before = await clusterMetrics(this.#target.registration);
    const run = await runOpenLoop({
      rate,
      durationMs,
      send: (i) => this.#send(names[this.#mode === 'cold' ? i : 0]!),
    });
    const after = await clusterMetrics(this.#target.registration);
    return {
      ...summarizeStep(rate, run.shots, durationMs),
      cold_starts: createdBetween(before, after),
      failure_kinds: failureSample(run.shots),
    };
  }

  async #send(name: string): Promise<ShotResult> {
    const r = await this.#client.request(name, { workload: this.#image, function: name });
    return r.error === undefined
      ? { status: r.status, ok: r.status === 200 && r.body.length > 0 }
      : { status: r.status, ok: false, error: r.error };
  }

  close(): Promise<void> {
    return this.#client.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function createdBetween(
  before: ClusterMetrics | undefined,
  after: ClusterMetrics | undefined,
): number | null {
  return before === undefined || after === undefined
    ? null
    : after.sandboxesCreated - before.sandboxesCreated;
}

/**
 * A piece of a function name from an image (InVitro's are registry
 * references: docker.io/vhiveease/relay:latest -> relay-latest): the last
 * path segment, lowercase, anything but letters and digits made "-", at most
 * 24 characters.
 */
export function imageTag(image: string): string {
  const last =
    image
      .split('/')
      .filter((p) => p !== '')
      .at(-1) ?? image;
  const tag = last
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 24)
    .replace(/-+$/, '');
  return tag === '' ? 'image' : tag;
}

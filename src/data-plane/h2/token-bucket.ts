/**
 * A token bucket: `burst` takes at once, refilled at `perSecond`. Pure: the
 * caller gives the time. The HTTP/2 session counts a client's stream resets
 * with it ("rapid reset", CVE-2023-44487, is thousands of them at once).
 */
export class TokenBucket {
  readonly #burst: number;
  readonly #perMs: number;
  #tokens: number;
  #at: number;

  constructor(burst: number, perSecond: number, nowMs: number) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#tokens = burst;
    this.#at = nowMs;
  }

  /** Takes one token at `nowMs`; false when none is left. */
  take(nowMs: number): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + (nowMs - this.#at) * this.#perMs);
    this.#at = nowMs;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** The newest bytes a sandbox wrote to stdout/stderr, bounded; older output is dropped. */

export const DEFAULT_LOG_BUFFER_BYTES = 64 * 1024;

export class LogBuffer {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #dropped = 0;

  constructor(readonly limitBytes = DEFAULT_LOG_BUFFER_BYTES) {}

  append(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes > this.limitBytes && this.#chunks.length > 1) {
      const old = this.#chunks.shift()!;
      this.#bytes -= old.length;
      this.#dropped += old.length;
    }
  }

  /** Bytes dropped so far because of the bound. */
  get dropped(): number {
    return this.#dropped;
  }

  text(): string {
    const all = Buffer.concat(this.#chunks).toString('utf8');
    return all.length > this.limitBytes ? all.slice(all.length - this.limitBytes) : all;
  }

  /** The last `n` non-empty lines, joined by " | ": for one-line failure reasons. */
  tail(n: number): string {
    const lines = this.text()
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0);
    return lines.slice(-n).join(' | ');
  }
}

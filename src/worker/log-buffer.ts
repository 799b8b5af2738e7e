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
    return lastLines(this.text(), n);
  }
}

/** The last `n` non-empty lines of a sandbox's output, joined by " | ". */
export function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-n)
    .join(' | ');
}

/** What a sandbox wrote, for `baton logs`. */
export interface SandboxOutput {
  id: string;
  function: string;
  /** `running`, or `exited: REASON`. */
  state: string;
  text: string;
}

/** Output of sandboxes that are gone (crashed, killed by a limit, deleted): the newest `keep`. */
export class ExitedOutputs {
  readonly #list: SandboxOutput[] = [];

  constructor(readonly keep = 32) {}

  add(output: SandboxOutput): void {
    this.#list.push(output);
    if (this.#list.length > this.keep) this.#list.shift();
  }

  of(functionName: string): SandboxOutput[] {
    return this.#list.filter((o) => o.function === functionName);
  }
}

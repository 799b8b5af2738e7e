/** The newest bytes a sandbox wrote to stdout/stderr, bounded; older output is dropped. */

export const DEFAULT_LOG_BUFFER_BYTES = 64 * 1024;

/** What a sandbox wrote, read back. */
export interface OutputRead {
  /** The newest output kept (bounded), written at or after the time asked for. */
  text: string;
  /** Bytes written since the sandbox started: a follower prints what lies past its last `end`. */
  end: number;
}

/** Where a sandbox's output can be read from, while it runs and after. */
export interface OutputReader {
  /** Output written at or after `sinceMs` (epoch ms; all that is kept when undefined). */
  read(sinceMs?: number): OutputRead;
}

export class LogBuffer implements OutputReader {
  readonly #chunks: Array<{ at: number; data: Buffer }> = [];
  #bytes = 0;
  #dropped = 0;

  constructor(readonly limitBytes = DEFAULT_LOG_BUFFER_BYTES) {}

  append(chunk: Buffer): void {
    this.#chunks.push({ at: Date.now(), data: chunk });
    this.#bytes += chunk.length;
    while (this.#bytes > this.limitBytes && this.#chunks.length > 1) {
      const old = this.#chunks.shift()!;
      this.#bytes -= old.data.length;
      this.#dropped += old.data.length;
    }
  }

  /** Bytes dropped so far because of the bound. */
  get dropped(): number {
    return this.#dropped;
  }

  read(sinceMs?: number): OutputRead {
    const chunks =
      sinceMs === undefined ? this.#chunks : this.#chunks.filter((c) => c.at >= sinceMs);
    const all = Buffer.concat(chunks.map((c) => c.data));
    const kept = all.length > this.limitBytes ? all.subarray(all.length - this.limitBytes) : all;
    return { text: kept.toString('utf8'), end: this.#dropped + this.#bytes };
  }

  text(): string {
    return this.read().text;
  }

  /** The last `n` non-empty lines, joined by " | ": for one-line failure reasons. */
  tail(n: number): string {
    return lastLines(this.text(), n);
  }
}

/** Output that no longer grows, read as a whole or not at all by `sinceMs`. */
export function frozenOutput(text: string, end: number, lastWriteMs: number): OutputReader {
  return {
    read: (sinceMs) => ({
      text: sinceMs === undefined || lastWriteMs >= sinceMs ? text : '',
      end,
    }),
  };
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
export interface SandboxOutput extends OutputRead {
  id: string;
  function: string;
  /** `running`, or `exited: REASON`. */
  state: string;
}

interface ExitedOutput {
  id: string;
  function: string;
  state: string;
  output: OutputReader;
}

/** Output of sandboxes that are gone (crashed, killed by a limit, deleted): the newest `keep`. */
export class ExitedOutputs {
  #list: ExitedOutput[] = [];

  constructor(readonly keep = 32) {}

  add(output: ExitedOutput): void {
    this.#list.push(output);
    if (this.#list.length > this.keep) this.#list.shift();
  }

  of(functionName: string, sinceMs: number | undefined): SandboxOutput[] {
    return this.#list
      .filter((o) => o.function === functionName)
      .map(({ output, ...o }) => ({ ...o, ...output.read(sinceMs) }));
  }

  /** Forgets a deleted function's. */
  drop(functionName: string): void {
    this.#list = this.#list.filter((o) => o.function !== functionName);
  }
}

/**
 * Reads a trace in the InVitro format (a directory of `invocations.csv`,
 * `durations.csv`, `memory.csv` and `dirigent.csv`; see
 * ../shared/traces/azure-100/README.md). Columns are found by header name.
 * A window of minutes and a seeded sample of functions can be taken. Any
 * malformed value is reported as `FILE:LINE:COLUMN: reason`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { InvalidArgumentError } from '../shared/errors.js';

/** Duration percentiles (ms) in the trace's columns. */
export const DURATION_PERCENTILES = [0, 1, 25, 50, 75, 99, 100] as const;
/** Memory percentiles (MiB) in the trace's columns. */
export const MEMORY_PERCENTILES = [1, 5, 25, 50, 75, 95, 99, 100] as const;

export interface TraceFunction {
  /** HashFunction. */
  hash: string;
  owner: string;
  app: string;
  trigger: string;
  /** Invocations in each minute of the window. */
  perMinute: number[];
  /** Execution time in ms at DURATION_PERCENTILES. */
  durationPercentiles: number[];
  averageDurationMs: number;
  /** Allocated memory in MiB at MEMORY_PERCENTILES. */
  memoryPercentiles: number[];
  deployment: {
    image: string;
    port: number;
    protocol: string;
    scalingUpperBound: number;
    scalingLowerBound: number;
    iterationMultiplier: number;
  };
}

export interface Trace {
  dir: string;
  /** Label of the first minute of the window (the header of its column). */
  firstMinuteLabel: string;
  minutes: number;
  functions: TraceFunction[];
}

export interface ReadTraceOptions {
  /** Offset of the window's first minute from the trace's first minute. Default 0. */
  startMinute?: number;
  /** Minutes in the window; default: to the end of the trace. */
  minutes?: number;
  /** Sample this many functions (seeded); default: all. */
  functions?: number;
  seed?: number;
}

export class TraceFormatError extends InvalidArgumentError {}

interface Row {
  file: string;
  line: number;
  cells: string[];
}

class CsvTable {
  readonly rows: Row[];
  readonly #columns: Map<string, number>;
  readonly header: string[];

  constructor(
    readonly file: string,
    text: string,
  ) {
    let records: Array<{ record: string[]; info: { lines: number } }>;
    try {
      records = parse(text, {
        info: true,
        skip_empty_lines: true,
        trim: true,
      }) as unknown as Array<{
        record: string[];
        info: { lines: number };
      }>;
    } catch (err) {
      throw new TraceFormatError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (records.length === 0) throw new TraceFormatError(`${file}:1:1: the file is empty`);
    this.header = records[0]!.record;
    this.#columns = new Map(this.header.map((h, i) => [h, i]));
    this.rows = records.slice(1).map((r) => ({ file, line: r.info.lines, cells: r.record }));
  }

  column(name: string): number {
    const i = this.#columns.get(name);
    if (i === undefined)
      throw new TraceFormatError(`${this.file}:1: no column "${name}" in the header`);
    return i;
  }

  text(row: Row, name: string): string {
    const i = this.column(name);
    const v = row.cells[i];
    if (v === undefined || v === '')
      throw new TraceFormatError(`${row.file}:${row.line}:${i + 1}: ${name} is missing`);
    return v;
  }

  number(row: Row, name: string, kind: 'integer' | 'number' = 'number'): number {
    const v = this.text(row, name);
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || (kind === 'integer' && !Number.isInteger(n))) {
      throw new TraceFormatError(
        `${row.file}:${row.line}:${this.column(name) + 1}: ${name} "${v}" is not a non-negative ${kind}`,
      );
    }
    return n;
  }
}

function readTable(dir: string, name: string): CsvTable {
  const file = join(dir, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new TraceFormatError(
      `${file}: cannot read: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return new CsvTable(file, text);
}

/** Reads the trace in `dir`, keeping the window and sample `o` asks for. */
export function readTrace(dir: string, o: ReadTraceOptions = {}): Trace {
  const invocations = readTable(dir, 'invocations.csv');
  const durations = readTable(dir, 'durations.csv');
  const memory = readTable(dir, 'memory.csv');
  const dirigent = readTable(dir, 'dirigent.csv');

  const minuteColumns = invocations.header.filter((h) => /^\d+$/.test(h));
  if (minuteColumns.length === 0)
    throw new TraceFormatError(`${invocations.file}:1: no minute columns in the header`);
  const start = o.startMinute ?? 0;
  if (!Number.isInteger(start) || start < 0 || start >= minuteColumns.length)
    throw new InvalidArgumentError(
      `--start-minute: ${start} is outside the trace's ${minuteColumns.length} minutes`,
    );
  const minutes = o.minutes ?? minuteColumns.length - start;
  if (!Number.isInteger(minutes) || minutes < 1 || start + minutes > minuteColumns.length)
    throw new InvalidArgumentError(
      `--minutes: ${minutes} from minute ${start} runs past the trace's ${minuteColumns.length} minutes`,
    );
  const window = minuteColumns.slice(start, start + minutes);

  const byHash = <T>(table: CsvTable, read: (row: Row) => T): Map<string, T> => {
    const m = new Map<string, T>();
    for (const row of table.rows) m.set(table.text(row, 'HashFunction'), read(row));
    return m;
  };
  const durationOf = byHash(durations, (row) => ({
    average: durations.number(row, 'Average'),
    percentiles: DURATION_PERCENTILES.map((p) => durations.number(row, `percentile_Average_${p}`)),
  }));
  const memoryOf = byHash(memory, (row) =>
    MEMORY_PERCENTILES.map((p) => memory.number(row, `AverageAllocatedMb_pct${p}`)),
  );
  const deploymentOf = byHash(dirigent, (row) => ({
    image: dirigent.text(row, 'Image'),
    port: dirigent.number(row, 'Port', 'integer'),
    protocol: dirigent.text(row, 'Protocol'),
    scalingUpperBound: dirigent.number(row, 'ScalingUpperBound', 'integer'),
    scalingLowerBound: dirigent.number(row, 'ScalingLowerBound', 'integer'),
    iterationMultiplier: dirigent.number(row, 'IterationMultiplier', 'integer'),
  }));

  let functions = invocations.rows.map((row): TraceFunction => {
    const hash = invocations.text(row, 'HashFunction');
    const where = `${invocations.file}:${row.line}`;
    const d = durationOf.get(hash);
    const m = memoryOf.get(hash);
    const dep = deploymentOf.get(hash);
    if (d === undefined)
      throw new TraceFormatError(`${where}: function ${hash} has no row in durations.csv`);
    if (m === undefined)
      throw new TraceFormatError(`${where}: function ${hash} has no row in memory.csv`);
    if (dep === undefined)
      throw new TraceFormatError(`${where}: function ${hash} has no row in dirigent.csv`);
    return {
      hash,
      owner: invocations.text(row, 'HashOwner'),
      app: invocations.text(row, 'HashApp'),
      trigger: invocations.text(row, 'Trigger'),
      perMinute: window.map((col) => invocations.number(row, col, 'integer')),
      durationPercentiles: d.percentiles,
      averageDurationMs: d.average,
      memoryPercentiles: m,
      deployment: dep,
    };
  });

  if (o.functions !== undefined) {
    if (!Number.isInteger(o.functions) || o.functions < 1 || o.functions > functions.length)
      throw new InvalidArgumentError(
        `--functions: ${o.functions} is not between 1 and the trace's ${functions.length} functions`,
      );
    functions = sample(functions, o.functions, o.seed ?? 0);
  }
  return { dir, firstMinuteLabel: window[0]!, minutes, functions };
}

/** `n` distinct items chosen with a seeded generator, in their original order. */
export function sample<T>(items: readonly T[], n: number, seed: number): T[] {
  const rng = xoroshiro128plus(seed);
  const idx = items.map((_, i) => i);
  for (let i = 0; i < n; i++) {
    const j = uniformInt(rng, i, idx.length - 1);
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i]!);
}

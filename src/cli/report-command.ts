/** `baton report`: summaries and the HTML page of trace replays written by `baton loadgen trace`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidConfigError } from '../shared/errors.js';
import { readCommand } from '../shared/options.js';
import { HELP_OPTION, booleanOption, stringOption } from '../shared/option-specs.js';
import { loadRun, summarizeLoaded, type LoadedRun } from '../loadgen/report.js';
import { renderReport, SUMMARY_ROWS } from '../loadgen/report-html.js';
import { formatTable } from './table.js';

const REPORT_OPTIONS = {
  out: {
    ...stringOption(undefined, 'where to write the HTML page', 'FILE'),
    defaultText: 'DIR/report.html for one directory, ./report.html for several',
  },
  json: booleanOption('print the summaries as JSON'),
  'dirigent-reference': booleanOption(
    "mark the paper's Dirigent results for the Azure 500-function trace (p50/p99 points)",
  ),
  ...HELP_OPTION,
};

export function runReport(argv: string[]): Promise<void> {
  const command = readCommand(
    argv,
    REPORT_OPTIONS,
    'baton report DIR [DIR...] [options]',
    "Summarises trace replays written by 'baton loadgen trace' and draws them on one HTML page (CDFs of slowdown and scheduling latency, sandbox timeline).",
    'any',
  );
  if (command === undefined) return Promise.resolve();
  if (command.args.length === 0)
    throw new InvalidConfigError(
      'expected one or more result directories; usage: baton report DIR [DIR...]',
    );
  const runs = command.args.map(loadRun);
  const out = resolve(
    command.options.out !== undefined
      ? command.options.out
      : runs.length === 1
        ? join(runs[0]!.dir, 'report.html')
        : 'report.html',
  );
  writeFileMaking(out, renderReport(runs, { reference: command.options['dirigent-reference'] }));
  printRuns(runs, command.options.json);
  process.stderr.write(`wrote ${out}\n`);
  return Promise.resolve();
}

export function writeFileMaking(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

export function printRuns(runs: LoadedRun[], json: boolean): void {
  const summaries = runs.map(summarizeLoaded);
  if (json) {
    const out = runs.map((r, i) => ({
      dir: r.dir,
      label: r.meta.label,
      execution: r.meta.execution,
      late_sends: r.meta.lateSends,
      ...summaries[i],
    }));
    process.stdout.write(`${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    formatTable(
      ['', ...runs.map((r) => r.meta.label)],
      [
        ['execution', ...runs.map((r) => r.meta.execution)],
        ['late sends (> 10 ms)', ...runs.map((r) => r.meta.lateSends)],
        ...SUMMARY_ROWS.map(([k, name]) => [
          name,
          ...summaries.map((s) => (s[k] === null ? '-' : s[k])),
        ]),
      ],
    ),
  );
}

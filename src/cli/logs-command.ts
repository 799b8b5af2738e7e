/**
 * `baton logs NAME`: what a function's sandboxes wrote, from every worker
 * (running and recently exited sandboxes), with `--tail N`, `--since 10m`
 * and `-f` to follow: the control plane is asked again every
 * FOLLOW_INTERVAL_MS and what each sandbox wrote past its last `end` is
 * printed, prefixed by the sandbox once several write.
 */
import { InvalidConfigError } from '../shared/errors.js';
import type { LogsReply } from '../shared/http-api.js';
import {
  DEFAULT_DATA_DIR,
  booleanOption,
  intOption,
  stringOption,
} from '../shared/option-specs.js';
import { printDaemonLog } from './daemon-logs.js';
import { sleep } from '../shared/time.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';

const FOLLOW_INTERVAL_MS = 500;

const LOGS_OPTIONS = {
  sandbox: stringOption(undefined, 'only this sandbox', 'ID'),
  follow: booleanOption('keep printing what the sandboxes write (Ctrl-C stops)', 'f'),
  since: stringOption(
    undefined,
    'only output written since then: a duration back (30s, 10m, 2h, 1d) or a date (2026-11-30T14:00:00Z)',
    'WHEN',
  ),
  tail: intOption(undefined, 'only the last N lines of each sandbox (or of the daemon)', 'N', 1),
  daemon: stringOption(
    undefined,
    "a daemon's log instead, from baton up's data dir (control-plane, data-plane, worker-1, ...)",
    'NAME',
  ),
  'data-dir': {
    ...stringOption(undefined, "baton up's data dir, for --daemon ($BATON_DATA_DIR)", 'DIR'),
    defaultText: DEFAULT_DATA_DIR,
  },
};

export async function runLogs(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton logs NAME [options] | baton logs --daemon NAME [options]',
    "Show what a function's sandboxes wrote (stdout and stderr, or an isolate's console), running and recently exited, newest last; or a daemon's log.",
    LOGS_OPTIONS,
    'any',
  );
  if (command === undefined) return;
  const o = command.options;
  const sinceMs = o.since === undefined ? undefined : parseSince(o.since, Date.now());
  if (o.daemon !== undefined) {
    if (command.args.length > 0)
      throw new InvalidConfigError('--daemon: give either a function name or --daemon NAME');
    return printDaemonLog(o.daemon, {
      dataDir: o['data-dir'] ?? process.env.BATON_DATA_DIR ?? DEFAULT_DATA_DIR,
      tail: o.tail,
      sinceMs,
      follow: o.follow,
      color: process.stdout.isTTY,
    });
  }
  if (command.args.length !== 1)
    throw new InvalidConfigError(
      'expected a function name (or --daemon NAME); usage: baton logs NAME [options]',
    );
  const name = command.args[0]!;
  const client = new ControlPlaneClient(o.cp);
  const first = await client.logs(name, o.sandbox, sinceMs);
  const seen = new Map<string, number>();
  for (const s of first.sandboxes) {
    seen.set(s.id, s.end);
    const text = o.tail === undefined ? s.text : lastLinesOf(s.text, o.tail);
    if (o.follow && text === '') continue;
    process.stdout.write(
      `==> sandbox ${s.id} on ${s.worker} (${s.state}) <==\n${withNewline(text) || '(no output)\n'}`,
    );
  }
  if (first.sandboxes.length === 0 && !o.follow)
    process.stdout.write(`no sandbox of ${name} has written anything yet\n`);
  reportUnreachable(first);
  if (!o.follow) return;
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let last = '';
  while (!stop.signal.aborted) {
    await sleep(FOLLOW_INTERVAL_MS, stop.signal).catch(() => undefined);
    if (stop.signal.aborted) break;
    const reply = await client.logs(name, o.sandbox);
    for (const s of reply.sandboxes) {
      const before = seen.get(s.id) ?? 0;
      seen.set(s.id, s.end);
      const fresh = s.end - before;
      if (fresh <= 0) continue;
      const bytes = Buffer.from(s.text, 'utf8');
      const skipped = fresh - bytes.length;
      const text = bytes.subarray(Math.max(0, bytes.length - fresh)).toString('utf8');
      if (s.id !== last)
        process.stdout.write(`==> sandbox ${s.id} on ${s.worker} (${s.state}) <==\n`);
      last = s.id;
      if (skipped > 0) process.stdout.write(`(${skipped} bytes written too fast to show)\n`);
      process.stdout.write(withNewline(text));
    }
  }
}

function reportUnreachable(reply: LogsReply): void {
  for (const u of reply.unreachable)
    process.stderr.write(`baton logs: worker ${u.worker} did not answer: ${u.reason}\n`);
}

function withNewline(text: string): string {
  return text.length === 0 || text.endsWith('\n') ? text : `${text}\n`;
}

/** The last `n` lines of `text` (a final partial line counts as one). */
export function lastLinesOf(text: string, n: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.length === 0 ? '' : `${lines.slice(-n).join('\n')}\n`;
}

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration back from `now` (30s, 10m, 1.5h, 2d) or a date Date.parse reads; epoch ms. */
export function parseSince(value: string, now: number): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value.trim());
  if (m !== null) return now - Number(m[1]) * UNIT_MS[m[2]!]!;
  const at = Date.parse(value);
  if (Number.isNaN(at))
    throw new InvalidConfigError(
      `--since: "${value}" is neither a duration (30s, 10m, 2h, 1d) nor a date (2026-11-30T14:00:00Z)`,
    );
  return at;
}

/**
 * `baton logs --daemon NAME`: a daemon's log file under `baton up`'s data
 * dir (DATA_DIR/logs/NAME.log, JSON lines from pino), printed for a person
 * by pino-pretty (time, level, message, then the fields); lines that are not
 * JSON (a crash's stack, HAProxy's or etcd's own) as they are. `--tail N`,
 * `--since` (by each line's time) and `-f` (new lines as they are written).
 */
import { closeSync, existsSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import PinoPretty from 'pino-pretty';
import { InvalidConfigError } from '../shared/errors.js';
import { sleep } from '../shared/time.js';

const FOLLOW_INTERVAL_MS = 300;

export interface DaemonLogOptions {
  dataDir: string;
  tail: number | undefined;
  sinceMs: number | undefined;
  follow: boolean;
  color: boolean;
}

/** The log file of daemon `name`; InvalidConfigError naming the daemons there are when it is not one. */
export function daemonLogFile(dataDir: string, name: string): string {
  const dir = join(resolve(dataDir), 'logs');
  const file = join(dir, `${name}.log`);
  if (existsSync(file)) return file;
  const known = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => f.slice(0, -4))
    : [];
  throw new InvalidConfigError(
    known.length === 0
      ? `--daemon: no logs in ${dir} (is --data-dir, or $BATON_DATA_DIR, the one baton up uses?)`
      : `--daemon: no daemon "${name}" logs in ${dir}; there are: ${known.sort().join(', ')}`,
  );
}

export async function printDaemonLog(name: string, o: DaemonLogOptions): Promise<void> {
  const file = daemonLogFile(o.dataDir, name);
  const pretty = PinoPretty.prettyFactory({
    colorize: o.color,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    singleLine: true,
  });
  const show = (line: string) => {
    const text = formatLine(line, pretty, o.sinceMs);
    if (text !== undefined) process.stdout.write(text);
  };
  const size = statSync(file).size;
  let lines = readRange(file, 0, size).split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (o.sinceMs !== undefined)
    lines = lines.filter((l) => formatLine(l, pretty, o.sinceMs) !== undefined);
  if (o.tail !== undefined) lines = lines.slice(-o.tail);
  for (const l of lines) show(l);
  if (!o.follow) return;
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let offset = size;
  let partial = '';
  while (!stop.signal.aborted) {
    await sleep(FOLLOW_INTERVAL_MS, stop.signal).catch(() => undefined);
    const now = statSync(file).size;
    if (now < offset) offset = 0; // truncated or replaced
    if (now === offset) continue;
    const parts = (partial + readRange(file, offset, now)).split('\n');
    offset = now;
    partial = parts.pop() ?? '';
    for (const l of parts) show(l);
  }
}

/** One line for a person, or undefined when it is empty or older than `sinceMs`. */
function formatLine(
  line: string,
  pretty: (input: unknown) => string,
  sinceMs: number | undefined,
): string | undefined {
  if (line.trim() === '') return undefined;
  let record: { time?: unknown } | undefined;
  try {
    record = JSON.parse(line) as { time?: unknown };
  } catch {
    record = undefined;
  }
  if (record === undefined || typeof record !== 'object' || record === null)
    return sinceMs === undefined ? `${line}\n` : undefined;
  if (sinceMs !== undefined && (typeof record.time !== 'number' || record.time < sinceMs))
    return undefined;
  return pretty(record);
}

function readRange(file: string, from: number, to: number): string {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    readSync(fd, buf, 0, buf.length, from);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

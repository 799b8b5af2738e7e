/** Where a container's output goes, and reading it back (bounded) for `baton logs` and failure reasons. */
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { processAlive } from '../../../shared/process-alive.js';
import { join } from 'node:path';
import { frozenOutput, type OutputRead, type OutputReader } from '../../log-buffer.js';

/** Bytes of a container's output kept for `baton logs` and failure reasons. */
const LOG_TAIL_BYTES = 64 * 1024;

/**
 * A new directory for a worker's container logs, named after its identity
 * and process: a worker that starts removes those its identity's dead
 * processes left (a worker killed with SIGKILL cannot remove its own).
 */
export function freshLogDir(identity: string): string {
  const prefix = `baton-containerd-logs-${identity.replace(/[^A-Za-z0-9.-]/g, '_')}-`;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(
      /^(\d+)-/.exec(name.startsWith(prefix) ? name.slice(prefix.length) : '')?.[1],
    );
    if (Number.isInteger(pid) && pid > 0 && !processAlive(pid))
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}

/**
 * containerd's `binary://` logger for containers' output: the shim starts it
 * with the container's stdout on fd 3 and stderr on fd 4 and waits for fd 5
 * to close; two `cat`s append both to LOG_DIR/CONTAINER_ID.log (the sandbox's
 * logFile), and the shim waits for them when the task is deleted. containerd
 * 1.6's own `file://` logging lost the output of a container that exited at
 * once (`ctr run --detach --log-uri file://...` alone: 3 of 40 runs on an
 * idle machine, 24 of 30 with both cores busy; this logger: 0 of 40 and 0
 * of 30), so a crash at start came without its last words.
 */
export function loggerUri(cat: string, logDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const file = `${q(logDir)}/"$CONTAINER_ID".log`;
  const script = `exec 5>&-; ${q(cat)} <&3 >>${file} & exec ${q(cat)} <&4 >>${file}`;
  return `binary:///bin/sh?-c=${encodeURIComponent(script)}`;
}

/** A container's log file as `baton logs` reads it (by `sinceMs`, the whole file or nothing: it has no times). */
export function logFileReader(file: string): OutputReader {
  return { read: (sinceMs) => readLogFile(file, sinceMs) };
}

/** The file's output now, kept after the file is gone. */
export function frozenLogFile(file: string): OutputReader {
  const { text, end, mtimeMs } = readLogFile(file);
  return frozenOutput(text, end, mtimeMs);
}

/** The newest LOG_TAIL_BYTES of a container's log file ('' when there is none). */
function readLogFile(file: string, sinceMs?: number): OutputRead & { mtimeMs: number } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return { text: '', end: 0, mtimeMs: 0 };
  }
  try {
    const { size, mtimeMs } = fstatSync(fd);
    if (sinceMs !== undefined && mtimeMs < sinceMs) return { text: '', end: size, mtimeMs };
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return { text: buf.toString('utf8'), end: size, mtimeMs };
  } finally {
    closeSync(fd);
  }
}

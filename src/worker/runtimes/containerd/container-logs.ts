/** Where a container's output goes, and reading it back (bounded) for `baton logs` and failure reasons. */
import { closeSync, openSync, readSync, statSync } from 'node:fs';

/** Bytes of a container's output kept for `baton logs` and failure reasons. */
const LOG_TAIL_BYTES = 64 * 1024;

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

/** The newest LOG_TAIL_BYTES of a container's log file ('' when there is none). */
export function readTail(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = statSync(file).size;
    const length = Math.min(size, LOG_TAIL_BYTES);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Result directories as `baton loadgen trace` writes them, from rows given by a test. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  INVOCATION_COLUMNS,
  TIMELINE_COLUMNS,
  type RunMeta,
} from '../../src/loadgen/trace-replay.js';

/** Writes run.json, invocations.csv (rows after the header) and, if given, sandboxes.csv. */
export function writeResultDir(
  dir: string,
  label: string,
  invocationRows: string,
  timelineRows?: string,
): string {
  mkdirSync(dir, { recursive: true });
  const meta: RunMeta = {
    tool: 'baton loadgen trace',
    label,
    startedAt: '2026-11-22T00:00:00.000Z',
    trace: { dir: '/trace', firstMinute: '480', minutes: 1, functions: 10 },
    warmupMinutes: 0,
    iat: 'exponential',
    seed: 1,
    execution: 'simulated',
    target: { registration: 'http://127.0.0.1:9091', proxy: 'http://127.0.0.1:8080' },
    functions: [],
    scheduled: 0,
    sent: 0,
    lateSends: 0,
    maxLateMs: 0,
    durationMs: 60_000,
  };
  writeFileSync(join(dir, 'run.json'), JSON.stringify(meta));
  writeFileSync(join(dir, 'invocations.csv'), `${INVOCATION_COLUMNS.join(',')}\n${invocationRows}`);
  if (timelineRows !== undefined)
    writeFileSync(join(dir, 'sandboxes.csv'), `${TIMELINE_COLUMNS.join(',')}\n${timelineRows}`);
  return dir;
}

/**
 * Logger construction. Components receive a logger; none creates a global one.
 * Daemons log JSON lines to stderr (pino); `baton up` collects them per component.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface LoggerOptions {
  level?: LevelWithSilent;
  component: string;
  node?: string;
}

export function createLogger(options: LoggerOptions): Logger {
  const root = pino(
    { level: options.level ?? 'info', base: { pid: process.pid } },
    pino.destination({ dest: 2, sync: false }),
  );
  return root.child({ component: options.component, node: options.node ?? options.component });
}

/** A logger that drops everything: for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

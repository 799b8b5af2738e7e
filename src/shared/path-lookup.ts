/** Finding executables on $PATH without running them. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Whether `command` is an executable name found in one of $PATH's directories. */
export function onPath(command: string): boolean {
  return pathOf(command) !== undefined;
}

/** Where `command` is found on $PATH (the first directory that has it). */
export function pathOf(command: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(':'))
    if (d !== '' && existsSync(join(d, command))) return join(d, command);
  return undefined;
}

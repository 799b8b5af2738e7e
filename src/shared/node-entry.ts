/**
 * How to start one of Baton's own modules as a Node process. Built code
 * (dist/*.js) runs directly; source (src/*.ts, under tsx in development and
 * tests) runs with the tsx loader.
 */
import { fileURLToPath } from 'node:url';

export interface NodeCommand {
  command: string;
  args: string[];
}

/**
 * `fromUrl` is the caller's import.meta.url; `relative` a sibling module path
 * without extension, e.g. '../../guest/process/builtin-host'.
 */
export function nodeEntry(fromUrl: string, relative: string): NodeCommand {
  const isSource = fromUrl.endsWith('.ts');
  const file = fileURLToPath(new URL(`${relative}${isSource ? '.ts' : '.js'}`, fromUrl));
  const args = isSource ? ['--import', import.meta.resolve('tsx'), file] : [file];
  return { command: process.execPath, args };
}

/**
 * What the process runtime runs for an image reference:
 * - a built-in image name (`trace`, `empty`, `hello`, `simulated-trace`, or
 *   Dirigent's image names) -> Baton's built-in sandbox;
 * - a path to a JS/TS module, or a directory holding `index.{ts,mts,js,mjs}`
 *   -> the module host, which serves the module's default export;
 * - a path to an executable, or a directory holding an executable `start`
 *   -> that program, which must serve HTTP on $PORT.
 * Anything else (an OCI image reference) cannot run in a process.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { SandboxStartError } from '../../shared/errors.js';
import { nodeEntry } from '../../shared/node-entry.js';
import { builtinImage } from '../../workloads/builtin-images.js';
import { SANDBOX_ENV } from '../../workloads/sandbox-environment.js';

export interface ProcessImage {
  command: string;
  args: string[];
  cwd: string | undefined;
  env: Record<string, string>;
}

const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

export function resolveProcessImage(image: string, baseDir: string): ProcessImage {
  if (builtinImage(image) !== undefined) {
    const { command, args } = nodeEntry(import.meta.url, '../../workloads/builtin-sandbox');
    return { command, args, cwd: undefined, env: { [SANDBOX_ENV.image]: image } };
  }
  if (!looksLikePath(image)) {
    throw new SandboxStartError(
      `image "${image}" is neither a built-in image nor a local path; the process runtime cannot run OCI images`,
    );
  }
  const path = isAbsolute(image) ? image : resolve(baseDir, image);
  const stat = statOrUndefined(path);
  if (stat === undefined) throw new SandboxStartError(`image path ${path} does not exist`);
  if (stat.isDirectory()) {
    const start = join(path, 'start');
    if (isExecutableFile(start)) return { command: start, args: [], cwd: path, env: {} };
    for (const ext of MODULE_EXTENSIONS) {
      const index = join(path, `index${ext}`);
      if (statOrUndefined(index)?.isFile() === true) return moduleHost(index, path);
    }
    throw new SandboxStartError(
      `image directory ${path} holds neither an executable "start" nor index.{ts,mts,js,mjs}`,
    );
  }
  if (MODULE_EXTENSIONS.some((ext) => path.endsWith(ext))) return moduleHost(path, undefined);
  if (isExecutableFile(path)) return { command: path, args: [], cwd: undefined, env: {} };
  throw new SandboxStartError(`image ${path} is neither a JS/TS module nor an executable file`);
}

function moduleHost(handler: string, cwd: string | undefined): ProcessImage {
  const { command, args } = nodeEntry(import.meta.url, '../../workloads/module-host');
  return { command, args, cwd, env: { [SANDBOX_ENV.handler]: handler } };
}

function looksLikePath(image: string): boolean {
  return (
    image.startsWith('/') || image.startsWith('./') || image.startsWith('../') || image === '.'
  );
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

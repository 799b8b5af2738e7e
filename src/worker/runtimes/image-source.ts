/**
 * Where an image's code comes from, for the runtimes that run local code
 * (process, isolates):
 * - a built-in image name (`trace`, `empty`, `hello`, `simulated-trace`, or
 *   Dirigent's image names) -> Baton's built-in function;
 * - a path to a JS/TS module, or a directory holding `index.{ts,mts,js,mjs}`
 *   -> that module's default export;
 * - a path to an executable, or a directory holding an executable `start`
 *   -> that program, which must serve HTTP on $PORT.
 * Anything else (an OCI image reference) is not local code.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { SandboxStartError } from '../../shared/errors.js';
import { builtinImage } from '../../shared/builtin-images.js';

const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

/** Where an image's code comes from, whatever runs it. */
export type ImageSource =
  | { kind: 'builtin'; image: string }
  | { kind: 'module'; path: string; dir: string | undefined }
  | { kind: 'executable'; path: string; dir: string | undefined };

/** Throws SandboxStartError for an image that is neither built in nor a local module or program. */
export function resolveImageSource(image: string, baseDir: string, runtime: string): ImageSource {
  if (builtinImage(image) !== undefined) return { kind: 'builtin', image };
  if (!looksLikePath(image)) {
    throw new SandboxStartError(
      `image "${image}" is neither a built-in image nor a local path; the ${runtime} runtime cannot run OCI images`,
    );
  }
  const path = isAbsolute(image) ? image : resolve(baseDir, image);
  const stat = statOrUndefined(path);
  if (stat === undefined) throw new SandboxStartError(`image path ${path} does not exist`);
  if (stat.isDirectory()) {
    const start = join(path, 'start');
    if (isExecutableFile(start)) return { kind: 'executable', path: start, dir: path };
    for (const ext of MODULE_EXTENSIONS) {
      const index = join(path, `index${ext}`);
      if (statOrUndefined(index)?.isFile() === true)
        return { kind: 'module', path: index, dir: path };
    }
    throw new SandboxStartError(
      `image directory ${path} holds neither an executable "start" nor index.{ts,mts,js,mjs}`,
    );
  }
  if (MODULE_EXTENSIONS.some((ext) => path.endsWith(ext)))
    return { kind: 'module', path, dir: undefined };
  if (isExecutableFile(path)) return { kind: 'executable', path, dir: undefined };
  throw new SandboxStartError(`image ${path} is neither a JS/TS module nor an executable file`);
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

/**
 * Built-in images: the InVitro workload contract (`trace`, `empty`, also
 * under Dirigent's docker image names) and `hello`. `simulated-trace` waits
 * the requested execution time instead of burning CPU.
 */

export type WorkloadKind = 'trace' | 'empty' | 'hello';
export type ExecutionMode = 'burn' | 'sleep';

export interface BuiltinImage {
  kind: WorkloadKind;
  execution: ExecutionMode;
}

const BUILTIN_IMAGES: ReadonlyMap<string, BuiltinImage> = new Map([
  ['trace', { kind: 'trace', execution: 'burn' }],
  ['simulated-trace', { kind: 'trace', execution: 'sleep' }],
  ['empty', { kind: 'empty', execution: 'burn' }],
  ['hello', { kind: 'hello', execution: 'burn' }],
  ['docker.io/cvetkovic/dirigent_trace_function:latest', { kind: 'trace', execution: 'burn' }],
  ['docker.io/cvetkovic/dirigent_empty_function:latest', { kind: 'empty', execution: 'burn' }],
]);

export const BUILTIN_IMAGE_NAMES = [...BUILTIN_IMAGES.keys()];

export function builtinImage(image: string): BuiltinImage | undefined {
  return BUILTIN_IMAGES.get(image) ?? BUILTIN_IMAGES.get(withDockerRegistry(image));
}

function withDockerRegistry(image: string): string {
  return image.startsWith('docker.io/') ? image : `docker.io/${image}`;
}

/**
 * InVitro's `workload` header names the behaviour; it may be `empty`,
 * `trace`, or an image URL containing one of them.
 */
export function workloadFromHeader(value: string | undefined): WorkloadKind | undefined {
  if (value === undefined || value.length === 0) return undefined;
  if (value === 'empty' || value === 'trace') return value;
  if (value.includes('empty')) return 'empty';
  if (value.includes('trace')) return 'trace';
  return undefined;
}

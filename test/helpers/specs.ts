import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compileFunctionSpec,
  type FunctionSpec,
  type FunctionSpecInput,
} from '../../src/shared/function-spec.js';

export function spec(overrides: Partial<FunctionSpecInput> = {}): FunctionSpec {
  return compileFunctionSpec({ name: 'f', image: 'empty', ...overrides });
}

/**
 * Writes into `dir` a TypeScript module with types (typed.ts: answers "typed
 * PATH") and a copy of examples/hello-ts, as a user would outside the clone.
 * Returns their image paths.
 */
export function writeTypedModules(dir: string): { typed: string; helloTs: string } {
  const typed = join(dir, 'typed.ts');
  writeFileSync(
    typed,
    'interface Greeting { text: string }\nexport default (req: Request): Response => { const g: Greeting = { text: "typed " + new URL(req.url).pathname }; return new Response(g.text); };\n',
  );
  const helloTs = join(dir, 'hello-ts');
  cpSync(fileURLToPath(new URL('../../examples/hello-ts', import.meta.url)), helloTs, {
    recursive: true,
  });
  return { typed, helloTs };
}

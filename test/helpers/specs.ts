import {
  compileFunctionSpec,
  type FunctionSpec,
  type FunctionSpecInput,
} from '../../src/shared/function-spec.js';

export function spec(overrides: Partial<FunctionSpecInput> = {}): FunctionSpec {
  return compileFunctionSpec({ name: 'f', image: 'empty', ...overrides });
}

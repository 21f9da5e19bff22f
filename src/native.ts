/**
 * Layer: native loader. The single place the compiled addon is required;
 * its contract is declared in `native-binding.d.ts` beside this file.
 */
import * as path from 'node:path';
import type { NativeBinding } from './native-binding';

let binding: NativeBinding | undefined;

/** The addon, loaded once from `build/Release/vigil.node`. */
export function native(): NativeBinding {
  if (binding) return binding;
  // dist/src/native.js and src/native.ts both sit two levels below the package root.
  const candidates = [
    path.join(__dirname, '..', 'build', 'Release', 'vigil.node'),
    path.join(__dirname, '..', '..', 'build', 'Release', 'vigil.node'),
  ];
  let lastErr: unknown;
  for (const c of candidates) {
    try {
      binding = require(c) as NativeBinding;
      return binding;
    } catch (e) {
      lastErr = e;
    }
  }
  throw new Error(`vigil native addon not found (run 'npm install' to build it): ${String(lastErr)}`);
}

// One stack for the whole run: started before the first test, stopped after
// the last. The tests find it through the environment, which the workers inherit.

import { rmSync } from 'node:fs';

import { METRICS } from './metrics';
import { startStack } from './stack';

export default async function globalSetup(): Promise<() => Promise<void>> {
  rmSync(METRICS, { force: true });
  const stack = await startStack();
  process.env.CANOPY_E2E_API = stack.api;
  process.env.CANOPY_E2E_MOTO = stack.moto;
  console.log(`stack up: ${stack.api}`);
  return stack.stop;
}

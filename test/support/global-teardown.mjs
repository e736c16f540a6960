import { rmSync } from 'node:fs';

export default async function globalTeardown() {
  const state = globalThis.__INSPECTION_TEST_STATE__;
  if (!state) return;
  await state.s3?.stop();
  await state.postgres?.stop();
  rmSync(state.tmp, { recursive: true, force: true });
}

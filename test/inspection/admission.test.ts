// Admission control of inspections (src/inference/admission.ts): all slots or none, each
// released once however the work ends, refusals reported.
import { Admission } from '../../src/inference/admission';

test('takes slots while they are free, all a request needs or none, and refuses the rest', () => {
  const refusals: number[] = [];
  const admission = new Admission(3, (count) => refusals.push(count));
  const one = admission.tryAcquire();
  const two = admission.tryAcquire(2);
  expect(one).not.toBeNull();
  expect(two).not.toBeNull();
  expect(admission.inFlight).toBe(3);
  expect(admission.tryAcquire()).toBeNull();
  two?.();
  // Two free: a request for three gets none of them.
  expect(admission.tryAcquire(3)).toBeNull();
  expect(admission.inFlight).toBe(1);
  expect(admission.tryAcquire(2)).not.toBeNull();
  expect(admission.inFlight).toBe(3);
  expect(refusals).toEqual([1, 3]);
});

test('a release gives its slots back once, however often it is called', () => {
  const admission = new Admission(2);
  const release = admission.tryAcquire(2);
  release?.();
  release?.();
  expect(admission.inFlight).toBe(0);
  const again = admission.tryAcquire(2);
  release?.();
  expect(admission.inFlight).toBe(2);
  again?.();
  expect(admission.inFlight).toBe(0);
});

test('slots come back on every path of work that holds them', async () => {
  const admission = new Admission(1);
  const held = async (work: () => Promise<void>): Promise<void> => {
    const release = admission.tryAcquire();
    if (!release) throw new Error('QUEUE_FULL');
    try {
      await work();
    } finally {
      release();
    }
  };
  await held(async () => undefined);
  await expect(held(() => Promise.reject(new Error('failed')))).rejects.toThrow('failed');
  expect(admission.inFlight).toBe(0);
  await held(async () => undefined);
});

test('impossible sizes are refused', () => {
  expect(() => new Admission(0)).toThrow(RangeError);
  expect(() => new Admission(1.5)).toThrow(RangeError);
  expect(() => new Admission(2).tryAcquire(0)).toThrow(RangeError);
});

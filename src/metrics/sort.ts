/**
 * Order-preserving integer keys for IEEE-754 floats, and a radix argsort built on them.
 *
 * Read as an unsigned integer, a float's bit pattern already sorts non-negative floats
 * correctly, but negative floats come after them and in reverse. Setting the sign bit of
 * non-negative floats and inverting every bit of negative ones gives unsigned keys whose
 * integer order is the numeric order: -Inf < ... < -0 < +0 < ... < +Inf. -0 is given +0's
 * key so that numbers that compare equal always share a key (and so form one tie group).
 * NaN has no place in that order and is rejected by the callers.
 */

const SIGN_BIT = 0x80000000;
const ABS_BITS = 0x7fffffff;
const FLOAT32_INFINITY_BITS = 0x7f800000;
const FLOAT64_INFINITY_HIGH_BITS = 0x7ff00000;

// Float32 keys travel as int32 values (bit patterns read through Int32Array views) so that
// V8 keeps them unboxed in the hot loops; their order is the unsigned order of the 32 bits
// (`key >>> 0`, or `key >>> 16` for the high half).
const INT32_SIGN = -0x80000000;

/** True when the float32 bit pattern `bits` (int32) encodes NaN. */
export function isFloat32NaNBits(bits: number): boolean {
  return (bits & ABS_BITS) > FLOAT32_INFINITY_BITS;
}

/** Order-preserving key (int32 bit pattern, unsigned order) of a float32's int32 bits. */
export function float32BitsToKey(bits: number): number {
  if (bits === INT32_SIGN) return INT32_SIGN; // -0 shares +0's key
  return bits < 0 ? ~bits : bits ^ INT32_SIGN;
}

const scratchBits = new Int32Array(1);
const scratchFloat = new Float32Array(scratchBits.buffer);

/** Inverse of {@link float32BitsToKey}: the float32 bit pattern (int32) of a key. */
export function keyToFloat32Bits(key: number): number {
  return key < 0 ? key ^ INT32_SIGN : ~key;
}

/** The float32 value (as a number) whose key is `key`. */
export function keyToFloat32(key: number): number {
  scratchBits[0] = keyToFloat32Bits(key);
  return scratchFloat[0];
}

/** Index of the high and low 32-bit halves of a float64 inside a Uint32Array view of it. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const HIGH_WORD = LITTLE_ENDIAN ? 1 : 0;
const LOW_WORD = LITTLE_ENDIAN ? 0 : 1;

const DIGIT_BITS = 16;
const DIGIT_MASK = 0xffff;
const DIGIT_COUNT = 1 << DIGIT_BITS;

/**
 * Indices of `values` ordered by value descending; equal values keep their index order
 * (stable). LSD radix sort over 16-bit digits of the descending keys (2 passes for float32,
 * 4 for float64; a pass whose digit is the same for every key is skipped). Throws a
 * RangeError on NaN. Extra memory: 4 (float32) or 8 (float64) bytes of keys plus 8 bytes
 * of index buffers per value.
 */
export function argsortDescending(values: Float32Array | Float64Array): Uint32Array {
  const keyWords = values instanceof Float32Array ? descendingKeys32(values) : descendingKeys64(values);
  return radixArgsortAscending(keyWords, values.length);
}

/** Inverted keys (so that ascending key order is descending value order), one word per value. */
function descendingKeys32(values: Float32Array): Uint32Array[] {
  const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
  const keys = new Uint32Array(values.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i];
    if (isFloat32NaNBits(b)) throw new RangeError(`score at index ${i} is NaN`);
    keys[i] = ~float32BitsToKey(b);
  }
  return [keys];
}

/** Inverted 64-bit keys as [low words, high words]. */
function descendingKeys64(values: Float64Array): Uint32Array[] {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length * 2);
  const low = new Uint32Array(values.length);
  const high = new Uint32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let hi = words[2 * i + HIGH_WORD];
    let lo = words[2 * i + LOW_WORD];
    const absHigh = (hi & ABS_BITS) >>> 0;
    if (absHigh > FLOAT64_INFINITY_HIGH_BITS || (absHigh === FLOAT64_INFINITY_HIGH_BITS && lo !== 0)) {
      throw new RangeError(`score at index ${i} is NaN`);
    }
    if (hi === SIGN_BIT && lo === 0) hi = 0; // -0 shares +0's key
    if (hi >= SIGN_BIT) {
      hi = ~hi >>> 0;
      lo = ~lo >>> 0;
    } else {
      hi = (hi | SIGN_BIT) >>> 0;
    }
    high[i] = ~hi;
    low[i] = ~lo;
  }
  return [low, high];
}

/** Stable LSD radix argsort of keys given as 32-bit words, least significant word first. */
function radixArgsortAscending(keyWords: readonly Uint32Array[], n: number): Uint32Array {
  let order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let next = new Uint32Array(n);
  const offsets = new Uint32Array(DIGIT_COUNT);
  for (const word of keyWords) {
    for (let shift = 0; shift < 32; shift += DIGIT_BITS) {
      offsets.fill(0);
      for (let i = 0; i < n; i++) offsets[(word[i] >>> shift) & DIGIT_MASK]++;
      if (n === 0 || offsets[(word[0] >>> shift) & DIGIT_MASK] === n) continue;
      let running = 0;
      for (let d = 0; d < DIGIT_COUNT; d++) {
        const count = offsets[d];
        offsets[d] = running;
        running += count;
      }
      for (let i = 0; i < n; i++) {
        const index = order[i];
        const digit = (word[index] >>> shift) & DIGIT_MASK;
        next[offsets[digit]++] = index;
      }
      const previous = order;
      order = next;
      next = previous;
    }
  }
  return order;
}

/**
 * Sorts float32 keys (see {@link float32BitsToKey}) in place, descending in unsigned order,
 * moving `payload` along: stable LSD radix sort, two 16-bit passes on the inverted keys.
 * Extra memory: 6 bytes per entry.
 */
export function sortKeysDescendingInPlace(keys: Int32Array, payload: Uint16Array): void {
  const n = keys.length;
  if (payload.length !== n) throw new RangeError(`got ${n} keys but ${payload.length} payload entries`);
  const scratchKeys = new Int32Array(n);
  const scratchPayload = new Uint16Array(n);
  const offsets = new Uint32Array(DIGIT_COUNT);
  const passes = [
    { shift: 0, fromKeys: keys, fromPayload: payload, toKeys: scratchKeys, toPayload: scratchPayload },
    { shift: DIGIT_BITS, fromKeys: scratchKeys, fromPayload: scratchPayload, toKeys: keys, toPayload: payload },
  ];
  for (const { shift, fromKeys, fromPayload, toKeys, toPayload } of passes) {
    offsets.fill(0);
    for (let i = 0; i < n; i++) offsets[(~fromKeys[i] >>> shift) & DIGIT_MASK]++;
    let running = 0;
    for (let d = 0; d < DIGIT_COUNT; d++) {
      const count = offsets[d];
      offsets[d] = running;
      running += count;
    }
    for (let i = 0; i < n; i++) {
      const key = fromKeys[i];
      const position = offsets[(~key >>> shift) & DIGIT_MASK]++;
      toKeys[position] = key;
      toPayload[position] = fromPayload[i];
    }
  }
}

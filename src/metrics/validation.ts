/** Shape checks shared by the pixel-level metrics; all failures are RangeErrors. */

export function assertPixelInputs(maps: readonly Float32Array[], masks: readonly Uint8Array[]): void {
  if (maps.length !== masks.length) {
    throw new RangeError(`got ${maps.length} anomaly maps but ${masks.length} masks`);
  }
  if (maps.length === 0) throw new RangeError('no anomaly maps given');
  for (let m = 0; m < maps.length; m++) {
    if (maps[m].length !== masks[m].length) {
      throw new RangeError(`map ${m} has ${maps[m].length} pixels but its mask has ${masks[m].length}`);
    }
  }
}

export function assertImageSize(maps: readonly Float32Array[], width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`image size must be positive integers, got ${width}×${height}`);
  }
  for (let m = 0; m < maps.length; m++) {
    if (maps[m].length !== width * height) {
      throw new RangeError(`map ${m} has ${maps[m].length} pixels, expected ${width}×${height}`);
    }
  }
}

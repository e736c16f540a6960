/**
 * The labelled side of the pixel metrics: the positive (defect) pixels of all images, each
 * with a weight class, sorted by score descending. scanPixelScoreGroups counts every pixel
 * label-free and merges these in per distinct score, so only defect pixels — usually a few
 * percent — are ever stored with a label.
 */
import { ComponentLabeler } from './connected-components';
import { float32BitsToKey, sortKeysDescendingInPlace } from './sort';

export interface PositivePixels {
  readonly count: number;
  /** Score keys (see sort.ts) of the positive pixels, descending in unsigned order. */
  readonly keys: Int32Array;
  /** Weight class of each positive pixel, aligned with keys. */
  readonly classes: Uint16Array;
  /** Weight by class. */
  readonly classWeights: Float64Array;
  /** Number of pixels that are not positive, over all images. */
  readonly negativePixels: number;
}

export interface RegionPositivePixels extends PositivePixels {
  /** Ground-truth regions (8-connected components of defect pixels) over all masks. */
  readonly regionCount: number;
}

/** Every nonzero mask pixel is positive with weight 1. Memory: 6 bytes per defect pixel, 12 while sorting. */
export function maskPositivePixels(maps: readonly Float32Array[], masks: readonly Uint8Array[]): PositivePixels {
  let count = 0;
  let totalPixels = 0;
  for (const mask of masks) {
    totalPixels += mask.length;
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) count++;
  }
  const keys = new Int32Array(count);
  let next = 0;
  masks.forEach((mask, m) => {
    const map = maps[m];
    const bits = new Int32Array(map.buffer, map.byteOffset, map.length);
    for (let i = 0; i < mask.length; i++) if (mask[i] !== 0) keys[next++] = float32BitsToKey(bits[i]);
  });
  const classes = new Uint16Array(count).fill(1);
  sortKeysDescendingInPlace(keys, classes);
  return { count, keys, classes, classWeights: Float64Array.of(0, 1), negativePixels: totalPixels - count };
}

/**
 * Positive pixels for PRO: each defect pixel's class stands for the area of its
 * ground-truth region (8-connected, as MVTec's `label(mask, np.ones((3, 3)))`) and weighs
 * 1 / area. Regions of one area share a class, so at most sqrt(2 × defect pixels) classes
 * exist and they fit 16 bits. Memory: 6–12 bytes per defect pixel (growth slack), 6 more
 * while sorting, plus the labeller's 8 bytes per pixel of one image.
 */
export function regionPositivePixels(
  maps: readonly Float32Array[],
  masks: readonly Uint8Array[],
  width: number,
  height: number,
): RegionPositivePixels {
  const labeler = new ComponentLabeler(width, height, 8);
  const classByArea = new Map<number, number>();
  const weights: number[] = [0];
  const list = new KeyClassList();
  let negativePixels = 0;
  let regionCount = 0;
  masks.forEach((mask, m) => {
    const { count, areas, pixels, labels } = labeler.labelForeground(mask);
    negativePixels += areas[0];
    if (count === 0) return;
    regionCount += count;
    const classOfLabel = new Uint16Array(count + 1);
    for (let label = 1; label <= count; label++) {
      const area = areas[label];
      let areaClass = classByArea.get(area);
      if (areaClass === undefined) {
        areaClass = weights.length;
        if (areaClass > 0xffff) throw new RangeError('more than 65,535 distinct region areas');
        weights.push(1 / area);
        classByArea.set(area, areaClass);
      }
      classOfLabel[label] = areaClass;
    }
    const map = maps[m];
    list.append(new Int32Array(map.buffer, map.byteOffset, map.length), pixels, labels, classOfLabel);
  });
  const { keys, classes } = list.trimmed();
  sortKeysDescendingInPlace(keys, classes);
  return {
    count: keys.length,
    keys,
    classes,
    classWeights: Float64Array.from(weights),
    negativePixels,
    regionCount,
  };
}

/** Growable (score key, class) pairs. */
class KeyClassList {
  private keys = new Int32Array(1 << 12);
  private classes = new Uint16Array(1 << 12);
  private length = 0;

  /** Appends the key of mapBits[pixels[k]] with class classOfLabel[labels[k]] for each k. */
  append(mapBits: Int32Array, pixels: Int32Array, labels: Int32Array, classOfLabel: Uint16Array): void {
    const needed = this.length + pixels.length;
    if (needed > this.keys.length) {
      const capacity = Math.max(needed, this.keys.length * 2);
      const keys = new Int32Array(capacity);
      keys.set(this.keys.subarray(0, this.length));
      const classes = new Uint16Array(capacity);
      classes.set(this.classes.subarray(0, this.length));
      this.keys = keys;
      this.classes = classes;
    }
    const { keys, classes } = this;
    let next = this.length;
    for (let k = 0; k < pixels.length; k++) {
      keys[next] = float32BitsToKey(mapBits[pixels[k]]);
      classes[next] = classOfLabel[labels[k]];
      next++;
    }
    this.length = next;
  }

  /** Views of the filled part (no copy). */
  trimmed(): { keys: Int32Array; classes: Uint16Array } {
    return { keys: this.keys.subarray(0, this.length), classes: this.classes.subarray(0, this.length) };
  }
}

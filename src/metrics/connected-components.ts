/**
 * Connected-component labelling of binary masks (nonzero = foreground), two-pass with
 * union-find. With connectivity 8 it matches `scipy.ndimage.label(mask, np.ones((3, 3)))`,
 * with connectivity 4 scipy's default cross structure; labels are numbered 1..count in
 * raster order of each component's first pixel.
 */

export type Connectivity = 4 | 8;

export interface ConnectedComponents {
  /** Per pixel: 0 for background, otherwise the component's label in 1..count. */
  readonly labels: Int32Array;
  readonly count: number;
  /** Pixel count by label, length count + 1; areas[0] is the number of background pixels. */
  readonly areas: Uint32Array;
}

export interface BoundingBox {
  /** Column of the leftmost pixel. */
  readonly x: number;
  /** Row of the topmost pixel. */
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

export interface ComponentStats {
  readonly label: number;
  readonly area: number;
  readonly bbox: BoundingBox;
  /** Mean pixel position (column, row). */
  readonly centroid: { readonly x: number; readonly y: number };
  /** Mean and maximum of the given values over the component; null when no values were given. */
  readonly meanValue: number | null;
  readonly maxValue: number | null;
}

/** Labels the components of `mask` (row-major, `width` × `height`) into a fresh label array. */
export function labelConnectedComponents(
  mask: Uint8Array,
  width: number,
  height: number,
  connectivity: Connectivity = 8,
): ConnectedComponents {
  return new ComponentLabeler(width, height, connectivity).label(mask);
}

/** Components of one mask as a sparse list of its foreground pixels. */
export interface ForegroundComponents {
  readonly count: number;
  /** Pixel count by label, length count + 1; areas[0] is the number of background pixels. */
  readonly areas: Uint32Array;
  /** Row-major indices of the foreground pixels, in raster order. */
  readonly pixels: Int32Array;
  /** Label (1..count) of each of those pixels. */
  readonly labels: Int32Array;
}

/**
 * Reusable labeller for many masks of one size. It keeps two label rows, the union-find
 * table and a list of foreground pixels between calls, so a mask costs one read pass plus
 * work proportional to its foreground. Extra memory: 8 bytes per pixel of one image.
 */
export class ComponentLabeler {
  readonly width: number;
  readonly height: number;
  readonly connectivity: Connectivity;
  /** Union-find forest over provisional labels; parent[l] <= l always holds. */
  private readonly parent: Int32Array;
  private readonly provisionalAreas: Uint32Array;
  /** Label rows with a zero sentinel at each end: pixel x lives at index x + 1. */
  private readonly previousRow: Int32Array;
  private readonly currentRow: Int32Array;
  private readonly foregroundPixels: Int32Array;
  private readonly foregroundLabels: Int32Array;
  /** Per row of the current mask: 1 when it has no foreground pixel. */
  private readonly emptyRows: Uint8Array;

  constructor(width: number, height: number, connectivity: Connectivity = 8) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new RangeError(`image size must be positive integers, got ${width}×${height}`);
    }
    if (connectivity !== 4 && connectivity !== 8) {
      throw new RangeError(`connectivity must be 4 or 8, got ${String(connectivity)}`);
    }
    this.width = width;
    this.height = height;
    this.connectivity = connectivity;
    // A new provisional label needs a foreground pixel whose left neighbour is background,
    // so a row creates at most ceil(width / 2) of them.
    const maxProvisional = Math.ceil(width / 2) * height + 1;
    this.parent = new Int32Array(maxProvisional);
    this.provisionalAreas = new Uint32Array(maxProvisional);
    this.previousRow = new Int32Array(width + 2);
    this.currentRow = new Int32Array(width + 2);
    this.foregroundPixels = new Int32Array(width * height);
    this.foregroundLabels = new Int32Array(width * height);
    this.emptyRows = new Uint8Array(height);
  }

  /** Dense labels of `mask`, written to `labelsOut` (or a new array). */
  label(mask: Uint8Array, labelsOut?: Int32Array): ConnectedComponents {
    const pixelCount = this.width * this.height;
    const labels = labelsOut ?? new Int32Array(pixelCount);
    if (labels.length !== pixelCount) {
      throw new RangeError(`label buffer has ${labels.length} entries, expected ${pixelCount}`);
    }
    const { count, areas, pixels, labels: pixelLabels } = this.labelForeground(mask);
    labels.fill(0);
    for (let k = 0; k < pixels.length; k++) labels[pixels[k]] = pixelLabels[k];
    return { labels, count, areas };
  }

  /**
   * Labels of the foreground pixels only; the returned arrays are views into buffers that
   * the next call overwrites.
   */
  labelForeground(mask: Uint8Array): ForegroundComponents {
    const { width, height } = this;
    const pixelCount = width * height;
    if (mask.length !== pixelCount) {
      throw new RangeError(`mask has ${mask.length} pixels, expected ${width}×${height} = ${pixelCount}`);
    }
    markEmptyRows(mask, width, this.emptyRows);
    const { foregroundCount, provisionalCount } = this.scan(mask);

    // Resolve provisional labels to final ones in increasing order. A root keeps the smallest
    // provisional label of its set, which was created by the set's first pixel in raster
    // order, so numbering roots in increasing order numbers components in raster order.
    // Because parent[l] < l for non-roots, parent[parent[l]] has already been rewritten to
    // the final label when l is reached.
    const { parent, provisionalAreas } = this;
    let count = 0;
    for (let l = 1; l < provisionalCount; l++) {
      parent[l] = parent[l] === l ? ++count : parent[parent[l]];
    }
    const areas = new Uint32Array(count + 1);
    areas[0] = pixelCount - foregroundCount;
    for (let l = 1; l < provisionalCount; l++) areas[parent[l]] += provisionalAreas[l];
    const pixels = this.foregroundPixels.subarray(0, foregroundCount);
    const labels = this.foregroundLabels.subarray(0, foregroundCount);
    for (let k = 0; k < foregroundCount; k++) labels[k] = parent[labels[k]];
    return { count, areas, pixels, labels };
  }

  /** First pass: provisional labels of the foreground pixels, with the labeller's connectivity. */
  private scan(mask: Uint8Array): { foregroundCount: number; provisionalCount: number } {
    const { width, height, parent, provisionalAreas, foregroundPixels, foregroundLabels, emptyRows } = this;
    const eightConnected = this.connectivity === 8;
    let previous = this.previousRow.fill(0);
    let current = this.currentRow;
    let next = 1;
    let foregroundCount = 0;
    for (let y = 0; y < height; y++) {
      if (emptyRows[y] === 1) {
        previous.fill(0); // now stands for this empty row; `current` stays scratch
        continue;
      }
      const rowStart = y * width;
      for (let x = 0; x < width; x++) {
        if (mask[rowStart + x] === 0) {
          current[x + 1] = 0;
          continue;
        }
        const north = previous[x + 1];
        // Two labelled neighbours to join, at most: with 8-connectivity, if N is foreground,
        // W, NW and NE were already joined to it when they (or N) were visited, so N's set is
        // the answer; otherwise W and NW are joined to each other (vertical neighbours) and
        // only NE may still be a separate set. With 4-connectivity: N and W.
        let first: number;
        let second: number;
        if (!eightConnected) {
          first = north;
          second = current[x];
        } else if (north !== 0) {
          first = north;
          second = 0;
        } else {
          const west = current[x];
          first = west !== 0 ? west : previous[x];
          second = previous[x + 2];
        }
        let root: number;
        if (first !== 0 && second !== 0) root = union(parent, first, second);
        else if (first !== 0) root = find(parent, first);
        else if (second !== 0) root = find(parent, second);
        else {
          root = next++;
          parent[root] = root;
          provisionalAreas[root] = 0;
        }
        current[x + 1] = root;
        provisionalAreas[root]++;
        foregroundPixels[foregroundCount] = rowStart + x;
        foregroundLabels[foregroundCount] = root;
        foregroundCount++;
      }
      const finished = previous;
      previous = current;
      current = finished;
    }
    return { foregroundCount, provisionalCount: next };
  }
}

/**
 * Flags the rows of `mask` without foreground pixels, reading four bytes at a time when the
 * mask is 4-byte aligned and rows are whole words (most of a defect mask is background).
 */
function markEmptyRows(mask: Uint8Array, width: number, emptyRows: Uint8Array): void {
  if (mask.byteOffset % 4 === 0 && width % 4 === 0) {
    const words = new Uint32Array(mask.buffer, mask.byteOffset, mask.length / 4);
    const wordsPerRow = width / 4;
    for (let y = 0; y < emptyRows.length; y++) {
      let any = 0;
      for (let w = y * wordsPerRow, end = w + wordsPerRow; w < end; w++) any |= words[w];
      emptyRows[y] = any === 0 ? 1 : 0;
    }
    return;
  }
  for (let y = 0; y < emptyRows.length; y++) {
    let any = 0;
    for (let i = y * width, end = i + width; i < end; i++) any |= mask[i];
    emptyRows[y] = any === 0 ? 1 : 0;
  }
}

function find(parent: Int32Array, label: number): number {
  let l = label;
  while (parent[l] !== l) {
    const grandparent = parent[parent[l]];
    parent[l] = grandparent; // path halving
    l = grandparent;
  }
  return l;
}

/** Joins the sets of a and b under the smaller root and returns that root. */
function union(parent: Int32Array, a: number, b: number): number {
  const rootA = find(parent, a);
  const rootB = find(parent, b);
  if (rootA === rootB) return rootA;
  if (rootA < rootB) {
    parent[rootB] = rootA;
    return rootA;
  }
  parent[rootA] = rootB;
  return rootB;
}

/**
 * Per-component area, bounding box, centroid and (when `values` is given, e.g. the anomaly
 * map the mask was thresholded from) mean and maximum value; entry k describes label k + 1.
 */
export function componentStats(
  labels: Int32Array,
  count: number,
  width: number,
  values?: Float32Array | Float64Array,
): ComponentStats[] {
  if (!Number.isInteger(width) || width <= 0 || labels.length % width !== 0) {
    throw new RangeError(`label array of ${labels.length} entries is not a whole number of rows of width ${width}`);
  }
  if (values !== undefined && values.length !== labels.length) {
    throw new RangeError(`values have ${values.length} entries, labels ${labels.length}`);
  }
  const areas = new Float64Array(count + 1);
  const minX = new Int32Array(count + 1).fill(width);
  const minY = new Int32Array(count + 1).fill(labels.length / width);
  const maxX = new Int32Array(count + 1).fill(-1);
  const maxY = new Int32Array(count + 1).fill(-1);
  const sumX = new Float64Array(count + 1);
  const sumY = new Float64Array(count + 1);
  const sumValue = new Float64Array(count + 1);
  const maxValue = new Float64Array(count + 1).fill(-Infinity);
  for (let i = 0, x = 0, y = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label !== 0) {
      if (label < 0 || label > count) throw new RangeError(`label ${label} at pixel ${i} is outside 1..${count}`);
      areas[label]++;
      if (x < minX[label]) minX[label] = x;
      if (x > maxX[label]) maxX[label] = x;
      if (y < minY[label]) minY[label] = y;
      if (y > maxY[label]) maxY[label] = y;
      sumX[label] += x;
      sumY[label] += y;
      if (values !== undefined) {
        const value = values[i];
        sumValue[label] += value;
        if (value > maxValue[label]) maxValue[label] = value;
      }
    }
    if (++x === width) {
      x = 0;
      y++;
    }
  }
  const stats: ComponentStats[] = [];
  for (let label = 1; label <= count; label++) {
    const area = areas[label];
    if (area === 0) throw new RangeError(`label ${label} has no pixels`);
    stats.push({
      label,
      area,
      bbox: {
        x: minX[label],
        y: minY[label],
        width: maxX[label] - minX[label] + 1,
        height: maxY[label] - minY[label] + 1,
      },
      centroid: { x: sumX[label] / area, y: sumY[label] / area },
      meanValue: values === undefined ? null : sumValue[label] / area,
      maxValue: values === undefined ? null : maxValue[label],
    });
  }
  return stats;
}

import { ComponentLabeler, componentStats, labelConnectedComponents, type Connectivity } from '../../src/metrics';
import { seededRandom, u8 } from './helpers';

/** Reference labelling: flood fill from each unlabelled pixel in raster order. */
function floodFillLabels(mask: Uint8Array, width: number, height: number, connectivity: Connectivity): Int32Array {
  const labels = new Int32Array(mask.length);
  const offsets =
    connectivity === 4
      ? [
          [0, 1],
          [1, 0],
          [0, -1],
          [-1, 0],
        ]
      : [
          [0, 1],
          [1, 0],
          [0, -1],
          [-1, 0],
          [1, 1],
          [1, -1],
          [-1, 1],
          [-1, -1],
        ];
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || labels[start] !== 0) continue;
    labels[start] = ++next;
    const stack = [start];
    while (stack.length > 0) {
      const i = stack.pop() as number;
      const x = i % width;
      const y = (i - x) / width;
      for (const [dy, dx] of offsets) {
        const nx = x + dx;
        const ny = y + dy;
        if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
        const j = ny * width + nx;
        if (mask[j] !== 0 && labels[j] === 0) {
          labels[j] = next;
          stack.push(j);
        }
      }
    }
  }
  return labels;
}

describe('labelConnectedComponents', () => {
  it('joins corner-touching squares with 8-connectivity and splits them with 4', () => {
    const mask = u8([
      [1, 1, 0, 0],
      [1, 1, 0, 0],
      [0, 0, 1, 1],
      [0, 0, 1, 1],
    ]);
    const eight = labelConnectedComponents(mask, 4, 4, 8);
    expect(eight.count).toBe(1);
    expect(Array.from(eight.areas)).toEqual([8, 8]);
    const four = labelConnectedComponents(mask, 4, 4, 4);
    expect(four.count).toBe(2);
    expect(Array.from(four.areas)).toEqual([8, 4, 4]);
    expect(Array.from(four.labels)).toEqual([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2]);
  });

  it('merges provisional labels (V and U shapes) and numbers components in raster order', () => {
    const v = u8([
      [1, 0, 0, 0, 1],
      [0, 1, 0, 1, 0],
      [0, 0, 1, 0, 0],
    ]);
    expect(labelConnectedComponents(v, 5, 3, 8).count).toBe(1);
    expect(labelConnectedComponents(v, 5, 3, 4).count).toBe(5);
    const u = u8([
      [0, 1, 0, 1],
      [1, 1, 0, 1],
      [0, 1, 1, 1],
      [0, 0, 0, 0],
      [1, 0, 0, 1],
    ]);
    const labelled = labelConnectedComponents(u, 4, 5, 4);
    expect(labelled.count).toBe(3);
    expect(Array.from(labelled.labels)).toEqual([0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 2, 0, 0, 3]);
    expect(Array.from(labelled.areas)).toEqual([10, 8, 1, 1]);
  });

  it('treats any nonzero value as foreground and handles empty and full masks', () => {
    expect(
      labelConnectedComponents(
        u8([
          [0, 255],
          [7, 0],
        ]),
        2,
        2,
        8,
      ).count,
    ).toBe(1);
    expect(labelConnectedComponents(new Uint8Array(6), 3, 2).count).toBe(0);
    const full = labelConnectedComponents(new Uint8Array(6).fill(1), 3, 2, 4);
    expect(full.count).toBe(1);
    expect(Array.from(full.areas)).toEqual([0, 6]);
  });

  it('equals a flood fill on random masks, with a reused labeller and buffer', () => {
    const random = seededRandom(3);
    for (const connectivity of [4, 8] as const) {
      for (const [width, height] of [
        [1, 9],
        [9, 1],
        [17, 13],
        [64, 48],
      ]) {
        const labeler = new ComponentLabeler(width, height, connectivity);
        const buffer = new Int32Array(width * height);
        for (const density of [0.2, 0.45, 0.6]) {
          const mask = Uint8Array.from({ length: width * height }, () => (random() < density ? 1 : 0));
          const expected = floodFillLabels(mask, width, height, connectivity);
          const { labels, count, areas } = labeler.label(mask, buffer);
          expect(labels).toBe(buffer);
          expect(Array.from(labels)).toEqual(Array.from(expected));
          expect(count).toBe(Math.max(0, ...expected));
          expect(areas.reduce((sum, area) => sum + area, 0)).toBe(width * height);
        }
      }
    }
  });

  it('keeps components apart across empty rows (word-wise and bytewise row checks)', () => {
    for (const width of [8, 7]) {
      const mask = new Uint8Array(width * 4);
      mask[0] = 1; // row 0
      mask[width + 5] = 1; // row 1; row 2 stays empty
      mask[3 * width] = 1; // row 3, below row 0's pixel
      const { count, labels } = labelConnectedComponents(mask, width, 4, 8);
      expect(count).toBe(3);
      expect([labels[0], labels[width + 5], labels[3 * width]]).toEqual([1, 2, 3]);
    }
    const random = seededRandom(5);
    for (const [width, height] of [
      [16, 40],
      [15, 40],
    ]) {
      const mask = Uint8Array.from({ length: width * height }, () => (random() < 0.5 ? 1 : 0));
      for (let y = 0; y < height; y++) if (random() < 0.4) mask.fill(0, y * width, (y + 1) * width);
      for (const connectivity of [4, 8] as const) {
        const { labels } = labelConnectedComponents(mask, width, height, connectivity);
        expect(Array.from(labels)).toEqual(Array.from(floodFillLabels(mask, width, height, connectivity)));
      }
    }
  });

  it('rejects bad sizes and connectivity', () => {
    expect(() => labelConnectedComponents(new Uint8Array(5), 2, 2)).toThrow(RangeError);
    expect(() => new ComponentLabeler(0, 2)).toThrow(RangeError);
    expect(() => new ComponentLabeler(2, 2, 6 as Connectivity)).toThrow(RangeError);
  });
});

describe('componentStats', () => {
  it('reports area, bounding box, centroid and value statistics per label', () => {
    const mask = u8([
      [1, 1, 0, 0, 0],
      [0, 1, 0, 0, 1],
      [0, 0, 0, 0, 1],
    ]);
    const values = Float32Array.from([1, 2, 0, 0, 0, 0, 6, 0, 0, 4, 0, 0, 0, 0, 8]);
    const { labels, count } = labelConnectedComponents(mask, 5, 3, 8);
    const [first, second] = componentStats(labels, count, 5, values);
    expect(first).toEqual({
      label: 1,
      area: 3,
      bbox: { x: 0, y: 0, width: 2, height: 2 },
      centroid: { x: 2 / 3, y: 1 / 3 },
      meanValue: 3,
      maxValue: 6,
    });
    expect(second).toEqual({
      label: 2,
      area: 2,
      bbox: { x: 4, y: 1, width: 1, height: 2 },
      centroid: { x: 4, y: 1.5 },
      meanValue: 6,
      maxValue: 8,
    });
    expect(componentStats(labels, count, 5)[0].meanValue).toBeNull();
  });

  it('rejects inconsistent inputs', () => {
    expect(() => componentStats(new Int32Array(7), 0, 5)).toThrow(RangeError);
    expect(() => componentStats(Int32Array.of(0, 2), 1, 2)).toThrow(RangeError);
    expect(() => componentStats(Int32Array.of(0, 1), 2, 2)).toThrow(RangeError);
  });
});

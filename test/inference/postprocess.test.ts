import sharp from 'sharp';
import { TURBO_LUT } from '../../src/inference/colormap';
import {
  blendRgb,
  inspectionFindings,
  renderInspectionPngs,
  colorizeMap,
  findRegions,
  heatmapScaleFromStats,
  normalizeScore,
  renderMaskPng,
  resizeMap,
  thresholdMap,
} from '../../src/inference/postprocess';

function grid(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

describe('normalizeScore', () => {
  const stats = { min: 2, max: 4 };
  it('is min-max scaled with the held-out statistics and clamped to [0, 1]', () => {
    expect(normalizeScore(3, stats)).toBe(0.5);
    expect(normalizeScore(2, stats)).toBe(0);
    expect(normalizeScore(1, stats)).toBe(0);
    expect(normalizeScore(4, stats)).toBe(1);
    expect(normalizeScore(10, stats)).toBe(1);
  });

  it('copes with a degenerate range and NaN', () => {
    expect(normalizeScore(5, { min: 5, max: 5 })).toBe(1);
    expect(normalizeScore(4, { min: 5, max: 5 })).toBe(0);
    expect(normalizeScore(Number.NaN, stats)).toBe(0);
  });
});

describe('resizeMap (bilinear, half-pixel centres like torch align_corners=False)', () => {
  it('doubles a 2×1 map with clamped edges', () => {
    expect(Array.from(resizeMap(grid([[0, 4]]), 2, 1, 4, 1))).toEqual([0, 1, 3, 4]);
  });

  it('keeps a constant map constant and returns a copy at the same size', () => {
    const map = new Float32Array(6).fill(0.7);
    expect(Array.from(resizeMap(map, 3, 2, 7, 5))).toEqual(new Array(35).fill(Math.fround(0.7)));
    const same = resizeMap(map, 3, 2, 3, 2);
    expect(same).not.toBe(map);
    expect(same).toEqual(map);
  });

  it('interpolates in both directions', () => {
    const map = grid([
      [0, 0],
      [0, 8],
    ]);
    // Output pixel (1, 1) of 4×4 samples at (0.25, 0.25) of the source: 8 × 0.25 × 0.25.
    expect(resizeMap(map, 2, 2, 4, 4)[1 * 4 + 1]).toBeCloseTo(0.5, 6);
  });
});

describe('findRegions', () => {
  const map = grid([
    [0.9, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.8, 0.0, 0.0, 0.6, 0.7],
    [0.0, 0.0, 0.0, 0.0, 0.5, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.55, 0.0, 0.0, 0.0],
  ]);

  it('labels 8-connected components of map >= threshold with box, area, mean and max', () => {
    const regions = findRegions(map, 0.5, 6, 5);
    expect(regions).toHaveLength(3);
    const [right, diagonal, single] = regions;
    expect(right).toMatchObject({ x: 4, y: 1, width: 2, height: 2, area: 3, maxScore: Math.fround(0.7) });
    expect(right.meanScore).toBeCloseTo((0.6 + 0.7 + 0.5) / 3, 6);
    // Diagonal neighbours are one region under 8-connectivity.
    expect(diagonal).toMatchObject({ x: 0, y: 0, width: 2, height: 2, area: 2, maxScore: Math.fround(0.9) });
    expect(single).toMatchObject({ x: 2, y: 4, width: 1, height: 1, area: 1 });
  });

  it('is empty when nothing reaches the threshold', () => {
    expect(findRegions(map, 1, 6, 5)).toEqual([]);
  });

  it('counts a value equal to the threshold as anomalous', () => {
    expect(findRegions(map, Math.fround(0.9), 6, 5)).toEqual([expect.objectContaining({ area: 1, x: 0, y: 0 })]);
  });
});

describe('heatmap colours', () => {
  it('puts the normal range in the cool half and saturates at the ends', () => {
    const scale = heatmapScaleFromStats({ min: 1, max: 3, p99: 2 });
    expect(scale).toEqual({ low: 1, high: 5 });
    const rgb = colorizeMap(Float32Array.from([0, 1, 3, 5, 100, Number.NaN]), scale);
    const entry = (i: number): number[] => Array.from(TURBO_LUT.subarray(i * 3, i * 3 + 3));
    expect(Array.from(rgb.subarray(0, 3))).toEqual(entry(0));
    expect(Array.from(rgb.subarray(3, 6))).toEqual(entry(0));
    expect(Array.from(rgb.subarray(6, 9))).toEqual(entry(128));
    expect(Array.from(rgb.subarray(9, 12))).toEqual(entry(255));
    expect(Array.from(rgb.subarray(12, 15))).toEqual(entry(255));
    expect(Array.from(rgb.subarray(15, 18))).toEqual(entry(0));
  });

  it('uses a Turbo table that runs from dark through blue and green to red', () => {
    const rgb = (i: number): number[] => Array.from(TURBO_LUT.subarray(i * 3, i * 3 + 3));
    const dominant = (i: number): string => ['red', 'green', 'blue'][rgb(i).indexOf(Math.max(...rgb(i)))];
    expect(rgb(0).reduce((sum, v) => sum + v, 0)).toBeLessThan(120);
    expect([dominant(30), dominant(128), dominant(230)]).toEqual(['blue', 'green', 'red']);
  });

  it('blends per byte', () => {
    expect(Array.from(blendRgb(Uint8Array.from([0, 100, 255]), Uint8Array.from([255, 100, 0]), 0.5))).toEqual([
      128, 100, 128,
    ]);
  });
});

describe('PNG rendering', () => {
  it('writes the mask as a one-channel 0/255 PNG', async () => {
    const png = await renderMaskPng(thresholdMap(grid([[0, 1, 2]]), 1), 3, 1);
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 3, height: 1, channels: 1 });
    const data = await sharp(png).toColourspace('b-w').raw().toBuffer();
    expect(Array.from(data)).toEqual([0, 255, 255]);
  });

  it('finds the regions and draws every image at the original image size', async () => {
    const original = { data: new Uint8Array(40 * 30 * 3).fill(128), width: 40, height: 30 };
    const anomalyMap = new Float32Array(8 * 6);
    anomalyMap[2 * 8 + 5] = 3; // one hot pixel of the model-size map
    const map = { anomalyMap, mapWidth: 8, mapHeight: 6, width: 40, height: 30, threshold: 1 };
    const artifacts = inspectionFindings({ ...map, score: 3, scoreStats: { min: 0, max: 2 } });
    const pngs = renderInspectionPngs({ ...map, original, mapStats: { min: 0, max: 1, p99: 0.5 } });
    expect(artifacts).toMatchObject({ width: 40, height: 30, normalizedScore: 1, isAnomalous: true, score: 3 });
    for (const png of [pngs.heatmap, pngs.overlay, pngs.mask]) {
      const metadata = await sharp(await (png as Promise<Buffer>)).metadata();
      expect([metadata.format, metadata.width, metadata.height]).toEqual(['png', 40, 30]);
    }
    expect(artifacts.regions).toHaveLength(1);
    const [region] = artifacts.regions;
    // Source pixel (5, 2) covers x 25..29, y 10..14 of the 5× larger image; bilinear spreads it.
    expect(region.x).toBeLessThanOrEqual(25);
    expect(region.x + region.width).toBeGreaterThanOrEqual(30);
    expect(region.y).toBeLessThanOrEqual(10);
    expect(region.y + region.height).toBeGreaterThanOrEqual(15);
    expect(region.maxScore).toBeLessThanOrEqual(3);
    expect(region.meanScore).toBeGreaterThanOrEqual(1);
    const mask = await sharp(await pngs.mask)
      .toColourspace('b-w')
      .raw()
      .toBuffer();
    expect(mask.reduce((count, value) => count + (value === 255 ? 1 : 0), 0)).toBe(region.area);
  });

  it('says normal when the score is below the threshold', async () => {
    const artifacts = inspectionFindings({
      anomalyMap: new Float32Array(4).fill(0.2),
      mapWidth: 2,
      mapHeight: 2,
      score: 0.2,
      width: 3,
      height: 3,
      threshold: 0.5,
      scoreStats: { min: 0, max: 0.4 },
    });
    expect(artifacts).toMatchObject({ isAnomalous: false, normalizedScore: 0.5, regions: [] });
  });

  it('draws the heatmap and mask but no overlay without the original image', async () => {
    const pngs = renderInspectionPngs({
      anomalyMap: new Float32Array(4).fill(0.2),
      mapWidth: 2,
      mapHeight: 2,
      width: 6,
      height: 4,
      threshold: 0.1,
      original: null,
      mapStats: { min: 0, max: 0.4, p99: 0.3 },
    });
    expect(pngs.overlay).toBeNull();
    expect((await sharp(await pngs.heatmap).metadata()).width).toBe(6);
    const mask = await sharp(await pngs.mask)
      .toColourspace('b-w')
      .raw()
      .toBuffer();
    expect(Array.from(mask)).toEqual(new Array(24).fill(255));
  });
});

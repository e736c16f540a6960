/**
 * Every metric of this module is a function of one sequence: the distinct scores in
 * descending order, each with how many negative and positive items carry exactly that
 * score and the summed weight of those positives (PRO weighs a defect pixel by 1 / area of
 * its ground-truth region). Producing that sequence is the only expensive step, so it is
 * done once and fed to any number of sinks (ROC, PRO, F1): pixel AUROC, pixel F1 and AUPRO
 * then come out of a single pass, which is exact because ties are resolved per distinct
 * score before any sink sees them.
 *
 * For pixels the sequence is built in two parts: every pixel's score is counted by a
 * label-free two-level counting sort over all maps, and the few positive (defect) pixels,
 * sorted separately with their weights (positive-pixels.ts), are merged in per distinct
 * score; negatives = all pixels with the score − positives with the score.
 *
 * Most distinct pixel scores belong to negatives only (a 256 × 256 map has ~65,000 pixels
 * and usually a few hundred defect pixels). Metrics that need no per-score curve can ask
 * for every run of consecutive negative-only scores as one group (`mergeNegativeRuns`):
 * then only buckets holding a positive pixel are sorted, and sinks see about two groups
 * per distinct positive score instead of one per distinct score.
 */
import { argsortDescending, float32BitsToKey, isFloat32NaNBits, keyToFloat32, keyToFloat32Bits } from './sort';
import type { PositivePixels } from './positive-pixels';

/** A run of consecutive score groups; entries [0, length) are valid (buffers are reused). */
export interface ScoreGroupBatch {
  readonly length: number;
  /**
   * Distinct scores, strictly descending across the whole sequence. NaN for a group that
   * stands for a merged run of negative-only scores (PixelScanOptions.mergeNegativeRuns).
   */
  readonly scores: Float32Array | Float64Array;
  readonly negatives: Uint32Array;
  readonly positives: Uint32Array;
  /** Sum of the weights of the positive items with this score. */
  readonly positiveWeights: Float64Array;
}

export interface ScoreGroupSink {
  /** Called with consecutive batches, highest scores first. */
  add(batch: ScoreGroupBatch): void;
}

/** Groups per-item scores (e.g. one per image); a label is positive when nonzero, weight 1. */
export function groupItemScores(scores: Float32Array | Float64Array, labels: Uint8Array): ScoreGroupBatch {
  if (scores.length !== labels.length) {
    throw new RangeError(`got ${scores.length} scores but ${labels.length} labels`);
  }
  const order = argsortDescending(scores);
  const n = scores.length;
  const groupScores = new Float64Array(n);
  const negatives = new Uint32Array(n);
  const positives = new Uint32Array(n);
  const positiveWeights = new Float64Array(n);
  let length = 0;
  for (let i = 0; i < n;) {
    const score = scores[order[i]];
    let negativeCount = 0;
    let positiveCount = 0;
    for (; i < n && scores[order[i]] === score; i++) {
      if (labels[order[i]] === 0) negativeCount++;
      else positiveCount++;
    }
    groupScores[length] = score === 0 ? 0 : score; // one group holds -0 and +0; report +0
    negatives[length] = negativeCount;
    positives[length] = positiveCount;
    positiveWeights[length] = positiveCount;
    length++;
  }
  return { length, scores: groupScores, negatives, positives, positiveWeights };
}

export interface PixelScanOptions {
  /**
   * Most pixels held in the scatter buffer at once (2 bytes each). Larger inputs are
   * scattered in several passes over score ranges (each pass reads all maps again); a
   * single 16-bit key bucket larger than this is still processed whole. Default 2^27
   * (256 MiB), enough for the full MVTec AD test set (113 M pixels at 256 × 256) in one pass.
   */
  readonly maxBufferedPixels?: number;
  /** Buckets with at least this many pixels are counted in a dense 65,536-entry table. */
  readonly denseBucketMinPixels?: number;
  /**
   * Emit each run of consecutive scores without positive pixels as one group (score NaN;
   * its negatives summed) instead of one group per score. AUROC and F1-max are exactly
   * the same, and AUPRO the same up to float rounding (~1e-16): on the ROC and PRO curves
   * the points of such a run lie on one horizontal segment, of which the run's group keeps
   * the end. Per-score curves (thresholds) need it off, the default.
   */
  readonly mergeNegativeRuns?: boolean;
}

export const DEFAULT_MAX_BUFFERED_PIXELS = 1 << 27;
const DEFAULT_DENSE_BUCKET_MIN_PIXELS = 512;

/** Keys are split into a 16-bit bucket (high half) and a 16-bit residue (low half). */
const HALF_BITS = 16;
const HALF_COUNT = 1 << HALF_BITS;

/**
 * Streams the score groups of all pixels of `maps` (float32 anomaly maps) to `sink`;
 * `positives` lists the positive pixels among them (with weights), the rest are negative.
 *
 * Two-level counting sort on the order-preserving float keys (see sort.ts):
 *  1. one pass over the maps counts pixels per high-16-bit key bucket (and rejects NaN);
 *  2. consecutive bucket ranges of at most `maxBufferedPixels` pixels are scattered, one
 *     range per pass over the maps, into a Uint16 buffer holding each pixel's low 16 key bits
 *     (with mergeNegativeRuns, only the buckets that hold a positive pixel: the others are
 *     one negative run each, whose size the histogram already gives);
 *  3. each bucket, from the highest, is counted by those low bits — in dense 65,536-entry
 *     tables when it has enough pixels, else after a 2 × 8-bit LSD counting sort — and its
 *     groups are emitted in descending order, the positives of each group merged in from
 *     the sorted positive list.
 *
 * Peak extra memory: 2 bytes per buffered pixel (min(total pixels, maxBufferedPixels), or
 * the largest single bucket if bigger) plus fixed tables (~3 MiB); nothing per pixel
 * beyond that.
 */
export function scanPixelScoreGroups(
  maps: readonly Float32Array[],
  positives: PositivePixels,
  sink: ScoreGroupSink,
  options: PixelScanOptions = {},
): void {
  const maxBufferedPixels = options.maxBufferedPixels ?? DEFAULT_MAX_BUFFERED_PIXELS;
  const denseBucketMinPixels = options.denseBucketMinPixels ?? DEFAULT_DENSE_BUCKET_MIN_PIXELS;
  const mergeNegativeRuns = options.mergeNegativeRuns ?? false;
  if (!(maxBufferedPixels >= 1)) throw new RangeError(`maxBufferedPixels must be >= 1, got ${maxBufferedPixels}`);

  const histogram = bucketHistogram(maps);
  // Pixels per bucket whose low key bits are needed: every bucket's, or with merged runs
  // only those of buckets with a positive pixel.
  const sortedPixels = mergeNegativeRuns ? onlyBucketsWithPositives(histogram, positives) : histogram;
  const ranges = planBucketRanges(sortedPixels, maxBufferedPixels);
  const largestRange = ranges.reduce((most, range) => Math.max(most, range.pixels), 0);
  const buffer = new Uint16Array(largestRange);
  const bucketEnds = new Uint32Array(HALF_COUNT);
  const scatterFlags = new Uint8Array(HALF_COUNT);
  const aggregator = new BucketAggregator(positives, denseBucketMinPixels, sortedPixels, mergeNegativeRuns);

  for (const range of ranges) {
    let offset = 0;
    for (let bucket = range.high; bucket >= range.low; bucket--) {
      const count = sortedPixels[bucket];
      bucketEnds[bucket] = offset;
      offset += count;
      scatterFlags[bucket] = count > 0 ? 1 : 0;
    }
    if (range.pixels > 0) scatterRange(maps, scatterFlags, buffer, bucketEnds);
    for (let bucket = range.high; bucket >= range.low; bucket--) {
      scatterFlags[bucket] = 0;
      const count = sortedPixels[bucket];
      if (count === 0) {
        // Only with merged runs: a bucket of negatives alone, never sorted.
        if (histogram[bucket] !== 0) aggregator.addNegativeRun(histogram[bucket]);
        continue;
      }
      const end = bucketEnds[bucket];
      aggregator.aggregate(buffer, end - count, end, bucket);
      if (aggregator.batch.length > 0) sink.add(aggregator.batch);
    }
  }
  aggregator.flushNegativeRun();
  if (aggregator.batch.length > 0) sink.add(aggregator.batch);
  aggregator.assertAllPositivesMerged();
}

function bucketHistogram(maps: readonly Float32Array[]): Uint32Array {
  const histogram = new Uint32Array(HALF_COUNT);
  let total = 0;
  for (let m = 0; m < maps.length; m++) {
    const map = maps[m];
    total += map.length;
    if (total > 0xffffffff) throw new RangeError('more than 2^32 - 1 pixels in total');
    const bits = new Int32Array(map.buffer, map.byteOffset, map.length);
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i];
      if (isFloat32NaNBits(b)) throw new RangeError(`map ${m} has NaN at pixel ${i}`);
      histogram[float32BitsToKey(b) >>> HALF_BITS]++;
    }
  }
  return histogram;
}

/** The histogram with every bucket that holds no positive pixel set to 0. */
function onlyBucketsWithPositives(histogram: Uint32Array, positives: PositivePixels): Uint32Array {
  const kept = new Uint32Array(HALF_COUNT);
  const { keys, count } = positives;
  for (let p = 0; p < count; p++) {
    const bucket = keys[p] >>> HALF_BITS;
    kept[bucket] = histogram[bucket];
  }
  return kept;
}

interface BucketRange {
  /** Highest and lowest bucket of the range (inclusive); together the ranges cover all buckets. */
  readonly high: number;
  readonly low: number;
  /** Pixels to scatter: the sum of the range's bucket counts. */
  readonly pixels: number;
}

/**
 * Splits the buckets, highest first, into consecutive ranges whose pixel counts stay within
 * maxPixels (a single bucket beyond it gets a range of its own).
 */
function planBucketRanges(pixelsPerBucket: Uint32Array, maxPixels: number): BucketRange[] {
  const ranges: BucketRange[] = [];
  let high = HALF_COUNT - 1;
  let pixels = 0;
  for (let bucket = HALF_COUNT - 1; bucket >= 0; bucket--) {
    const count = pixelsPerBucket[bucket];
    if (count === 0) continue;
    if (pixels > 0 && pixels + count > maxPixels) {
      ranges.push({ high, low: bucket + 1, pixels });
      high = bucket;
      pixels = 0;
    }
    pixels += count;
  }
  ranges.push({ high, low: 0, pixels });
  return ranges;
}

/** Writes the low 16 key bits of every pixel whose bucket is flagged to its bucket. */
function scatterRange(
  maps: readonly Float32Array[],
  flags: Uint8Array,
  buffer: Uint16Array,
  cursors: Uint32Array,
): void {
  for (let m = 0; m < maps.length; m++) {
    const map = maps[m];
    const bits = new Int32Array(map.buffer, map.byteOffset, map.length);
    for (let i = 0; i < bits.length; i++) {
      const key = float32BitsToKey(bits[i]);
      const bucket = key >>> HALF_BITS;
      // The Uint16Array store keeps the low 16 bits.
      if (flags[bucket] !== 0) buffer[cursors[bucket]++] = key;
    }
  }
}

/** Turns one bucket of low key bits into descending score groups. */
class BucketAggregator {
  readonly batch: {
    length: number;
    readonly scores: Float32Array;
    readonly negatives: Uint32Array;
    readonly positives: Uint32Array;
    readonly positiveWeights: Float64Array;
  };
  /** The batch's scores as int32 bit patterns: groups are written as bits, read as floats. */
  private readonly scoreBits: Int32Array;
  private readonly denseCounts = new Uint32Array(HALF_COUNT);
  /** One bit per residue seen in the current dense bucket, so emptying skips the rest. */
  private readonly denseSeen = new Int32Array(HALF_COUNT >>> 5);
  /** The current bucket's groups, descending: low key bits and pixel count. */
  private readonly groupResidues = new Uint16Array(HALF_COUNT);
  private readonly groupCounts = new Uint32Array(HALF_COUNT);
  private readonly sortScratch: Uint16Array;
  private readonly digitOffsets = new Uint32Array(256);
  /** Next entry of the positive list to merge. */
  private positiveCursor = 0;
  /** With merged runs: negatives of the current run, not yet emitted. */
  private pendingNegatives = 0;

  constructor(
    private readonly positives: PositivePixels,
    private readonly denseMinPixels: number,
    pixelsPerBucket: Uint32Array,
    private readonly mergeNegativeRuns: boolean,
  ) {
    let largestSparseBucket = 0;
    for (const count of pixelsPerBucket) {
      if (count < denseMinPixels && count > largestSparseBucket) largestSparseBucket = count;
    }
    this.sortScratch = new Uint16Array(largestSparseBucket);
    // Merged, a bucket yields up to two groups per residue: a negative run, then a positive group.
    const capacity = mergeNegativeRuns ? 2 * HALF_COUNT : HALF_COUNT;
    const scores = new Float32Array(capacity);
    this.scoreBits = new Int32Array(scores.buffer);
    this.batch = {
      length: 0,
      scores,
      negatives: new Uint32Array(capacity),
      positives: new Uint32Array(capacity),
      positiveWeights: new Float64Array(capacity),
    };
  }

  aggregate(residues: Uint16Array, start: number, end: number, bucket: number): void {
    this.batch.length = 0;
    const dense = end - start >= this.denseMinPixels;
    if (this.mergeNegativeRuns && dense) this.aggregateDenseMerged(residues, start, end, bucket);
    else if (dense) this.aggregateDense(residues, start, end, bucket);
    else this.aggregateSorted(residues, start, end, bucket);
  }

  /** Merged runs only: a bucket of `count` negatives (and no positive) continues the current run. */
  addNegativeRun(count: number): void {
    this.pendingNegatives += count;
  }

  /** Merged runs only: puts the last negative run, if any, alone in the batch. */
  flushNegativeRun(): void {
    this.batch.length = 0;
    if (this.pendingNegatives > 0) this.batch.length = this.emitNegativeRun(0);
  }

  assertAllPositivesMerged(): void {
    if (this.positiveCursor !== this.positives.count) {
      throw new Error(`only ${this.positiveCursor} of ${this.positives.count} positive pixels matched a map score`);
    }
  }

  private aggregateDense(residues: Uint16Array, start: number, end: number, bucket: number): void {
    const { denseCounts, denseSeen, groupResidues, groupCounts } = this;
    for (let i = start; i < end; i++) {
      const residue = residues[i];
      denseSeen[residue >>> 5] |= 1 << (residue & 31);
      denseCounts[residue]++;
    }
    let groups = 0;
    for (let w = denseSeen.length - 1; w >= 0; w--) {
      let seen = denseSeen[w];
      if (seen === 0) continue;
      denseSeen[w] = 0;
      while (seen !== 0) {
        const bit = 31 - Math.clz32(seen);
        seen ^= 1 << bit;
        const residue = (w << 5) | bit;
        groupResidues[groups] = residue;
        groupCounts[groups] = denseCounts[residue];
        groups++;
        denseCounts[residue] = 0;
      }
    }
    this.writeGroups(bucket, groups);
  }

  private aggregateSorted(residues: Uint16Array, start: number, end: number, bucket: number): void {
    this.sortResidues(residues, start, end);
    const { groupResidues, groupCounts } = this;
    let groups = 0;
    for (let i = end - 1; i >= start;) {
      const residue = residues[i];
      let count = 0;
      for (; i >= start && residues[i] === residue; i--) count++;
      groupResidues[groups] = residue;
      groupCounts[groups] = count;
      groups++;
    }
    if (this.mergeNegativeRuns) this.writeGroupsMerged(bucket, groups);
    else this.writeGroups(bucket, groups);
  }

  /**
   * Merged runs, dense bucket: counts every residue, then walks down to each positive score
   * of the bucket, adding the counts passed on the way to the current negative run; no
   * bitmap and no group per negative-only score.
   */
  private aggregateDenseMerged(residues: Uint16Array, start: number, end: number, bucket: number): void {
    const counts = this.denseCounts;
    for (let i = start; i < end; i++) counts[residues[i]]++;
    const keys = this.positives.keys;
    const positiveCount = this.positives.count;
    let pending = this.pendingNegatives;
    let accounted = 0;
    let groups = 0;
    let residue = HALF_COUNT - 1; // highest residue whose count is not yet taken
    while (this.positiveCursor < positiveCount && keys[this.positiveCursor] >>> HALF_BITS === bucket) {
      const positiveResidue = keys[this.positiveCursor] & (HALF_COUNT - 1);
      for (; residue > positiveResidue; residue--) {
        pending += counts[residue];
        accounted += counts[residue];
        counts[residue] = 0;
      }
      const count = counts[positiveResidue];
      counts[positiveResidue] = 0;
      accounted += count;
      residue = positiveResidue - 1;
      if (pending > 0) {
        this.pendingNegatives = pending;
        groups = this.emitNegativeRun(groups);
        pending = 0;
      }
      groups = this.emitGroupWithPositives(groups, (bucket << HALF_BITS) | positiveResidue, count);
    }
    // Below the bucket's last positive score: one run, sized without reading the counts.
    this.pendingNegatives = pending + (end - start - accounted);
    if (residue >= 0) counts.fill(0, 0, residue + 1);
    this.batch.length = groups;
  }

  /** Merged runs, from the bucket's (residue, count) groups: see aggregateDenseMerged. */
  private writeGroupsMerged(bucket: number, groups: number): void {
    const { groupResidues, groupCounts } = this;
    const keys = this.positives.keys;
    const positiveCount = this.positives.count;
    const keyBase = bucket << HALF_BITS;
    let emitted = 0;
    for (let g = 0; g < groups; g++) {
      const key = keyBase | groupResidues[g];
      if (this.positiveCursor < positiveCount && keys[this.positiveCursor] === key) {
        if (this.pendingNegatives > 0) emitted = this.emitNegativeRun(emitted);
        emitted = this.emitGroupWithPositives(emitted, key, groupCounts[g]);
      } else {
        this.pendingNegatives += groupCounts[g];
      }
    }
    this.batch.length = emitted;
  }

  /** Writes the pending negative run as batch entry `index`; returns the next index. */
  private emitNegativeRun(index: number): number {
    const { batch } = this;
    batch.scores[index] = NaN;
    batch.negatives[index] = this.pendingNegatives;
    batch.positives[index] = 0;
    batch.positiveWeights[index] = 0;
    this.pendingNegatives = 0;
    return index + 1;
  }

  /**
   * Writes the group of score `key`, which holds `count` pixels, as batch entry `index`,
   * taking its positives from the positive list; returns the next index.
   */
  private emitGroupWithPositives(index: number, key: number, count: number): number {
    const { keys, classes, classWeights, count: positiveCount } = this.positives;
    let cursor = this.positiveCursor;
    let groupPositives = 0;
    let weight = 0;
    while (cursor < positiveCount && keys[cursor] === key) {
      groupPositives++;
      weight += classWeights[classes[cursor]];
      cursor++;
    }
    if (groupPositives > count || weight !== weight) {
      throw new Error(`the positive pixels disagree with the maps at score ${keyToFloat32(key)}`);
    }
    this.positiveCursor = cursor;
    const { batch } = this;
    this.scoreBits[index] = keyToFloat32Bits(key);
    batch.negatives[index] = count - groupPositives;
    batch.positives[index] = groupPositives;
    batch.positiveWeights[index] = weight;
    return index + 1;
  }

  /** Fills the batch from the bucket's (residue, count) groups, merging in their positives. */
  private writeGroups(bucket: number, groups: number): void {
    const { groupResidues, groupCounts } = this;
    const keyBase = bucket << HALF_BITS;
    for (let g = 0; g < groups; g++) this.emitGroupWithPositives(g, keyBase | groupResidues[g], groupCounts[g]);
    this.batch.length = groups;
  }

  /** Ascending LSD counting sort of residues[start, end), 8 bits a pass. */
  private sortResidues(residues: Uint16Array, start: number, end: number): void {
    const scratch = this.sortScratch;
    const offsets = this.digitOffsets;
    const n = end - start;
    for (const shift of [0, 8]) {
      const fromResidues = shift === 0;
      const source = fromResidues ? residues : scratch;
      const sourceStart = fromResidues ? start : 0;
      const target = fromResidues ? scratch : residues;
      const targetStart = fromResidues ? 0 : start;
      offsets.fill(0);
      for (let i = 0; i < n; i++) offsets[(source[sourceStart + i] >>> shift) & 0xff]++;
      let running = targetStart;
      for (let d = 0; d < 256; d++) {
        const count = offsets[d];
        offsets[d] = running;
        running += count;
      }
      for (let i = 0; i < n; i++) {
        const residue = source[sourceStart + i];
        target[offsets[(residue >>> shift) & 0xff]++] = residue;
      }
    }
  }
}

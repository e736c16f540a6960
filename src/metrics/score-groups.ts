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
 */
import { argsortDescending, float32BitsToKey, isFloat32NaNBits, keyToFloat32, keyToFloat32Bits } from './sort';
import type { PositivePixels } from './positive-pixels';

/** A run of consecutive score groups; entries [0, length) are valid (buffers are reused). */
export interface ScoreGroupBatch {
  readonly length: number;
  /** Distinct scores, strictly descending across the whole sequence. */
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
  for (let i = 0; i < n; ) {
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
 *     range per pass over the maps, into a Uint16 buffer holding each pixel's low 16 key bits;
 *  3. each bucket, from the highest, is counted by those low bits — in dense 65,536-entry
 *     tables plus a bitmap of the entries used when it has enough pixels, else after a
 *     2 × 8-bit LSD counting sort — and its groups are emitted in descending order, the
 *     positives of each group merged in from the sorted positive list.
 *
 * Peak extra memory: 2 bytes per buffered pixel (min(total pixels, maxBufferedPixels), or
 * the largest single bucket if bigger) plus fixed tables (~2.5 MiB); nothing per pixel
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
  if (!(maxBufferedPixels >= 1)) throw new RangeError(`maxBufferedPixels must be >= 1, got ${maxBufferedPixels}`);

  const histogram = bucketHistogram(maps);
  const ranges = planBucketRanges(histogram, maxBufferedPixels);
  const largestRange = ranges.reduce((most, range) => Math.max(most, range.pixels), 0);
  const buffer = new Uint16Array(largestRange);
  const bucketEnds = new Uint32Array(HALF_COUNT);
  const aggregator = new BucketAggregator(positives, denseBucketMinPixels, histogram);

  for (const range of ranges) {
    let offset = 0;
    for (let bucket = range.high; bucket >= range.low; bucket--) {
      bucketEnds[bucket] = offset;
      offset += histogram[bucket];
    }
    scatterRange(maps, range, buffer, bucketEnds);
    for (let bucket = range.high; bucket >= range.low; bucket--) {
      const count = histogram[bucket];
      if (count === 0) continue;
      const end = bucketEnds[bucket];
      aggregator.aggregate(buffer, end - count, end, bucket);
      sink.add(aggregator.batch);
    }
  }
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

interface BucketRange {
  /** Highest and lowest bucket of the range (inclusive). */
  readonly high: number;
  readonly low: number;
  readonly pixels: number;
}

/** Splits the non-empty buckets, highest first, into consecutive ranges of bounded size. */
function planBucketRanges(histogram: Uint32Array, maxPixels: number): BucketRange[] {
  const ranges: BucketRange[] = [];
  let high = -1;
  let low = -1;
  let pixels = 0;
  for (let bucket = HALF_COUNT - 1; bucket >= 0; bucket--) {
    const count = histogram[bucket];
    if (count === 0) continue;
    if (high >= 0 && pixels + count > maxPixels) {
      ranges.push({ high, low, pixels });
      high = -1;
      pixels = 0;
    }
    if (high < 0) high = bucket;
    low = bucket;
    pixels += count;
  }
  if (high >= 0) ranges.push({ high, low, pixels });
  return ranges;
}

/** Writes the low 16 key bits of every pixel whose bucket lies in `range` to its bucket. */
function scatterRange(maps: readonly Float32Array[], range: BucketRange, buffer: Uint16Array, cursors: Uint32Array): void {
  const { high, low } = range;
  for (let m = 0; m < maps.length; m++) {
    const map = maps[m];
    const bits = new Int32Array(map.buffer, map.byteOffset, map.length);
    for (let i = 0; i < bits.length; i++) {
      const key = float32BitsToKey(bits[i]);
      const bucket = key >>> HALF_BITS;
      // The Uint16Array store keeps the low 16 bits.
      if (bucket <= high && bucket >= low) buffer[cursors[bucket]++] = key;
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

  constructor(
    private readonly positives: PositivePixels,
    private readonly denseMinPixels: number,
    histogram: Uint32Array,
  ) {
    let largestSparseBucket = 0;
    for (const count of histogram) {
      if (count < denseMinPixels && count > largestSparseBucket) largestSparseBucket = count;
    }
    this.sortScratch = new Uint16Array(largestSparseBucket);
    const scores = new Float32Array(HALF_COUNT);
    this.scoreBits = new Int32Array(scores.buffer);
    this.batch = {
      length: 0,
      scores,
      negatives: new Uint32Array(HALF_COUNT),
      positives: new Uint32Array(HALF_COUNT),
      positiveWeights: new Float64Array(HALF_COUNT),
    };
  }

  aggregate(residues: Uint16Array, start: number, end: number, bucket: number): void {
    if (end - start >= this.denseMinPixels) this.aggregateDense(residues, start, end, bucket);
    else this.aggregateSorted(residues, start, end, bucket);
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
    for (let i = end - 1; i >= start; ) {
      const residue = residues[i];
      let count = 0;
      for (; i >= start && residues[i] === residue; i--) count++;
      groupResidues[groups] = residue;
      groupCounts[groups] = count;
      groups++;
    }
    this.writeGroups(bucket, groups);
  }

  /** Fills the batch from the bucket's (residue, count) groups, merging in their positives. */
  private writeGroups(bucket: number, groups: number): void {
    const { keys, classes, classWeights, count: positiveCount } = this.positives;
    const { scoreBits, batch, groupResidues, groupCounts } = this;
    const { negatives, positives, positiveWeights } = batch;
    const keyBase = bucket << HALF_BITS;
    let cursor = this.positiveCursor;
    for (let g = 0; g < groups; g++) {
      const key = keyBase | groupResidues[g];
      const count = groupCounts[g];
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
      scoreBits[g] = keyToFloat32Bits(key);
      negatives[g] = count - groupPositives;
      positives[g] = groupPositives;
      positiveWeights[g] = weight;
    }
    this.positiveCursor = cursor;
    batch.length = groups;
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

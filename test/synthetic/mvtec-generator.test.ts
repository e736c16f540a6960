import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { parseGeneratorArguments, UsageError } from '../../scripts/generate-mvtec';
import {
  DEFECT_TYPES,
  GeneratorOptionsError,
  MAX_MASK_FRACTION,
  MIN_MASK_FRACTION,
  TEXTURE_KINDS,
  generateSample,
  writeMvtecCategory,
  type GeneratedCategorySummary,
  type WriteMvtecCategoryOptions,
} from '../../src/synthetic/mvtec-generator';

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(__dirname, '../..');
const compiledCli = path.join(repoRoot, 'dist/scripts/generate-mvtec.js');

const SIZE = 64;
const COUNTS = { trainCount: 4, testGoodCount: 3, testDefectCount: 4 } as const;

let tmpRoot: string;
let first: GeneratedCategorySummary;
let repeat: GeneratedCategorySummary;
let otherSeed: GeneratedCategorySummary;

function options(outDir: string, seed: number): WriteMvtecCategoryOptions {
  return { outDir, category: 'fabric', seed, size: SIZE, ...COUNTS };
}

/** Relative, '/'-separated paths of every file under `dir`, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

async function sha256OfFiles(dir: string): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const file of await listFiles(dir)) {
    hashes.set(
      file,
      createHash('sha256')
        .update(await readFile(path.join(dir, file)))
        .digest('hex'),
    );
  }
  return hashes;
}

async function readMask(
  file: string,
): Promise<{ pixels: Buffer; width: number; height: number; channels: number | undefined }> {
  const metadata = await sharp(file).metadata();
  // sharp converts to sRGB on raw output; take the one stored channel back out.
  const pixels = await sharp(file).extractChannel(0).raw().toBuffer();
  return { pixels, width: metadata.width, height: metadata.height, channels: metadata.channels };
}

/** Independent re-implementation of region labelling, so the test does not trust the generator's. */
function countRegions(mask: Uint8Array, size: number, connectivity: 4 | 8): number {
  const seen = new Uint8Array(mask.length);
  const neighbours =
    connectivity === 4
      ? [
          [1, 0],
          [-1, 0],
          [0, 1],
          [0, -1],
        ]
      : [
          [1, 0],
          [-1, 0],
          [0, 1],
          [0, -1],
          [1, 1],
          [1, -1],
          [-1, 1],
          [-1, -1],
        ];
  let regions = 0;
  for (let start = 0; start < mask.length; start++) {
    if (mask[start] === 0 || seen[start] === 1) continue;
    regions++;
    const queue = [start];
    seen[start] = 1;
    while (queue.length > 0) {
      const index = queue.pop() as number;
      const x = index % size;
      const y = Math.floor(index / size);
      for (const [dx, dy] of neighbours) {
        const nx = x + dx;
        const ny = y + dy;
        const next = ny * size + nx;
        if (nx >= 0 && ny >= 0 && nx < size && ny < size && mask[next] !== 0 && seen[next] === 0) {
          seen[next] = 1;
          queue.push(next);
        }
      }
    }
  }
  return regions;
}

beforeAll(async () => {
  tmpRoot = await mkdtemp(path.join(process.env.TEST_TMP_DIR ?? os.tmpdir(), 'mvtec-generator-'));
  first = await writeMvtecCategory(options(path.join(tmpRoot, 'first'), 11));
  repeat = await writeMvtecCategory(options(path.join(tmpRoot, 'repeat'), 11));
  otherSeed = await writeMvtecCategory(options(path.join(tmpRoot, 'other-seed'), 12));
});

afterAll(async () => {
  if (tmpRoot) await rm(tmpRoot, { recursive: true, force: true });
});

describe('writeMvtecCategory', () => {
  it('writes the MVTec AD layout with the requested counts and nothing else', async () => {
    const stems = (count: number) => Array.from({ length: count }, (_, index) => String(index).padStart(3, '0'));
    const expected = [
      ...stems(COUNTS.trainCount).map((stem) => `train/good/${stem}.png`),
      ...stems(COUNTS.testGoodCount).map((stem) => `test/good/${stem}.png`),
      ...DEFECT_TYPES.flatMap((defect) => [
        ...stems(COUNTS.testDefectCount).map((stem) => `test/${defect}/${stem}.png`),
        ...stems(COUNTS.testDefectCount).map((stem) => `ground_truth/${defect}/${stem}_mask.png`),
      ]),
    ].sort();

    expect(first.categoryDir).toBe(path.join(tmpRoot, 'first', 'fabric'));
    expect(await listFiles(first.categoryDir)).toEqual(expected);
    expect(await readdir(path.join(tmpRoot, 'first'))).toEqual(['fabric']); // no staging folder left behind

    expect(first.counts).toEqual({
      train: { good: 4 },
      test: { good: 3, scratch: 4, hole: 4, stain: 4, fold: 4, crack: 4 },
    });
    expect(first.imageCount).toBe(4 + 3 + 4 * DEFECT_TYPES.length);
    expect(first.maskCount).toBe(4 * DEFECT_TYPES.length);
    const listed = first.files.flatMap((file) =>
      file.maskPath === null ? [file.imagePath] : [file.imagePath, file.maskPath],
    );
    expect(listed.sort()).toEqual(expected);
  });

  it('gives every defective test image a same-stem binary single-channel mask, and good images none', async () => {
    expect(existsSync(path.join(first.categoryDir, 'ground_truth', 'good'))).toBe(false);
    for (const file of first.files) {
      const image = await sharp(path.join(first.categoryDir, file.imagePath)).metadata();
      expect([image.width, image.height, image.channels]).toEqual([SIZE, SIZE, 3]);

      if (file.label === 'good') {
        expect(file.maskPath).toBeNull();
        continue;
      }
      const stem = path.posix.basename(file.imagePath, '.png');
      expect(file.imagePath).toBe(`test/${file.label}/${stem}.png`);
      expect(file.maskPath).toBe(`ground_truth/${file.label}/${stem}_mask.png`);

      const mask = await readMask(path.join(first.categoryDir, file.maskPath as string));
      expect([mask.width, mask.height, mask.channels]).toEqual([SIZE, SIZE, 1]);
      expect(mask.pixels.length).toBe(SIZE * SIZE);
      const foreground = mask.pixels.filter((value) => value === 255).length;
      const background = mask.pixels.filter((value) => value === 0).length;
      expect(foreground + background).toBe(SIZE * SIZE);
      expect(foreground).toBeGreaterThan(0);
      expect(foreground).toBe(file.maskPixelCount);
      expect(countRegions(mask.pixels, SIZE, 8)).toBe(file.maskRegionCount);
    }
  });

  it('includes masks whose regions touch only at corners (one region with 8-connectivity, several with 4)', async () => {
    let diagonalOnlyMasks = 0;
    for (const file of first.files) {
      if (file.maskPath === null) continue;
      const { pixels } = await readMask(path.join(first.categoryDir, file.maskPath));
      const regions4 = countRegions(pixels, SIZE, 4);
      const regions8 = countRegions(pixels, SIZE, 8);
      expect(regions4).toBeGreaterThanOrEqual(regions8);
      if (regions4 > regions8) diagonalOnlyMasks++;
      // A crack is a chain of squares joined only at their corners.
      if (file.label === 'crack') expect(regions4).toBeGreaterThan(regions8);
    }
    expect(diagonalOnlyMasks).toBeGreaterThan(0);
  });

  it('writes byte-identical files for the same arguments', async () => {
    const firstHashes = await sha256OfFiles(first.categoryDir);
    expect(firstHashes.size).toBe(first.imageCount + first.maskCount);
    expect(await sha256OfFiles(repeat.categoryDir)).toEqual(firstHashes);
    expect(repeat.files).toEqual(first.files);
  });

  it('writes different images for a different seed', async () => {
    const firstHashes = await sha256OfFiles(first.categoryDir);
    const otherHashes = await sha256OfFiles(otherSeed.categoryDir);
    expect([...otherHashes.keys()]).toEqual([...firstHashes.keys()]);
    for (const file of otherSeed.files) {
      expect(otherHashes.get(file.imagePath)).not.toBe(firstHashes.get(file.imagePath));
    }
  });

  it('refuses to write over an existing category unless asked to overwrite', async () => {
    const outDir = path.join(tmpRoot, 'overwrite');
    const small: WriteMvtecCategoryOptions = {
      outDir,
      category: 'plate',
      seed: 3,
      size: 32,
      trainCount: 1,
      testGoodCount: 1,
      testDefectCount: 1,
    };
    const written = await writeMvtecCategory(small);
    const before = await sha256OfFiles(written.categoryDir);

    await expect(writeMvtecCategory(small)).rejects.toThrow(GeneratorOptionsError);
    await writeMvtecCategory({ ...small, overwrite: true });
    expect(await sha256OfFiles(written.categoryDir)).toEqual(before);
    expect(await readdir(outDir)).toEqual(['plate']);
  });

  it('rejects invalid options before touching the disk', async () => {
    const outDir = path.join(tmpRoot, 'invalid');
    const valid: WriteMvtecCategoryOptions = { outDir, category: 'fabric', seed: 1 };
    await expect(writeMvtecCategory({ ...valid, category: '../escape' })).rejects.toThrow(/category/);
    await expect(writeMvtecCategory({ ...valid, size: 16 })).rejects.toThrow(/size/);
    await expect(writeMvtecCategory({ ...valid, seed: -1 })).rejects.toThrow(/seed/);
    await expect(writeMvtecCategory({ ...valid, trainCount: 1.5 })).rejects.toThrow(/trainCount/);
    expect(existsSync(outDir)).toBe(false);
  });
});

describe('generateSample', () => {
  const base = { seed: 5, category: 'fabric', size: 128, split: 'test' } as const;

  it('changes exactly the masked pixels, with masks between the minimum and maximum area', () => {
    for (const defect of DEFECT_TYPES) {
      for (let index = 0; index < 6; index++) {
        const { image, cleanImage, mask } = generateSample({ ...base, label: defect, index });
        if (mask === null) throw new Error('a defective sample must have a mask');
        let masked = 0;
        const wrongPixels: string[] = [];
        for (let pixel = 0; pixel < mask.length; pixel++) {
          const offset = pixel * 3;
          const changed =
            image[offset] !== cleanImage[offset] ||
            image[offset + 1] !== cleanImage[offset + 1] ||
            image[offset + 2] !== cleanImage[offset + 2];
          const expected = changed ? 255 : 0;
          if (mask[pixel] !== expected)
            wrongPixels.push(`${defect} #${index} pixel ${pixel}: changed=${changed}, mask=${mask[pixel]}`);
          if (mask[pixel] === 255) masked++;
        }
        expect(wrongPixels.slice(0, 5)).toEqual([]);
        expect(masked / mask.length).toBeGreaterThanOrEqual(MIN_MASK_FRACTION);
        expect(masked / mask.length).toBeLessThanOrEqual(MAX_MASK_FRACTION);
      }
    }
  });

  it('is a pure function of its spec', () => {
    const spec = { ...base, label: 'fold', index: 2 } as const;
    const once = generateSample(spec);
    const twice = generateSample(spec);
    expect(Buffer.from(twice.image).equals(Buffer.from(once.image))).toBe(true);
    expect(Buffer.from(twice.mask ?? []).equals(Buffer.from(once.mask ?? []))).toBe(true);
  });

  it.each(TEXTURE_KINDS)('renders %s normal images that differ clearly from one another', (texture) => {
    const images = [0, 1, 2].map(
      (index) => generateSample({ ...base, texture, split: 'train', label: 'good', index }).image,
    );
    for (const image of images) {
      const mean = image.reduce((sum, value) => sum + value, 0) / image.length;
      const spread = Math.sqrt(image.reduce((sum, value) => sum + (value - mean) ** 2, 0) / image.length);
      expect(spread).toBeGreaterThan(5); // textured, not flat
    }
    for (let a = 0; a < images.length; a++) {
      for (let b = a + 1; b < images.length; b++) {
        let difference = 0;
        for (let i = 0; i < images[a].length; i++) difference += Math.abs(images[a][i] - images[b][i]);
        expect(difference / images[a].length).toBeGreaterThan(5);
      }
    }
  });
});

describe('generate-mvtec CLI', () => {
  it('parses the contract flags', () => {
    const command = parseGeneratorArguments([
      '--out',
      '/data/out',
      '--category',
      'carpet',
      '--seed',
      '42',
      '--size',
      '128',
      '--train',
      '10',
      '--test-good',
      '5',
      '--test-defect',
      '2',
    ]);
    expect(command).toEqual({
      kind: 'generate',
      options: {
        outDir: '/data/out',
        category: 'carpet',
        seed: 42,
        size: 128,
        trainCount: 10,
        testGoodCount: 5,
        testDefectCount: 2,
        texture: undefined,
        overwrite: false,
      },
    });
    expect(parseGeneratorArguments(['--help'])).toEqual({ kind: 'help' });
  });

  it.each([
    [['--category', 'c', '--seed', '1'], /missing required --out/],
    [['--out', 'o', '--category', 'c', '--seed', 'abc'], /--seed must be a non-negative integer/],
    [['--out', 'o', '--category', 'c', '--seed', '1', '--train', '-3'], /--train/],
    [['--out', 'o', '--category', 'c', '--seed', '1', '--bogus', '1'], /bogus/],
    [['--out', 'o', '--category', 'c', '--seed', '1', '--texture', 'plaid'], /--texture must be one of/],
  ])('rejects %j', (args, message) => {
    expect(() => parseGeneratorArguments(args)).toThrow(UsageError);
    expect(() => parseGeneratorArguments(args)).toThrow(message);
  });

  it('runs compiled, printing a one-line JSON summary, and exits 2 on bad arguments', async () => {
    if (!existsSync(compiledCli)) throw new Error(`${compiledCli} is missing: run "npm run build" first`);
    const outDir = path.join(tmpRoot, 'cli');
    const { stdout } = await execFileAsync(process.execPath, [
      compiledCli,
      '--out',
      outDir,
      '--category',
      'wood',
      '--seed',
      '9',
      '--size',
      '32',
      '--train',
      '2',
      '--test-good',
      '1',
      '--test-defect',
      '1',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(summary).toMatchObject({
      category: 'wood',
      categoryDir: path.join(outDir, 'wood'),
      seed: 9,
      size: 32,
      texture: 'wood-grain',
      counts: { train: { good: 2 }, test: { good: 1, scratch: 1, hole: 1, stain: 1, fold: 1, crack: 1 } },
      imageCount: 8,
      maskCount: 5,
    });
    expect((await listFiles(path.join(outDir, 'wood'))).length).toBe(13);

    const failure = await execFileAsync(process.execPath, [
      compiledCli,
      '--out',
      outDir,
      '--category',
      'wood',
      '--seed',
      'x',
    ]).then(
      () => null,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failure?.code).toBe(2);
    expect(failure?.stderr).toMatch(/--seed must be a non-negative integer/);
  });
});

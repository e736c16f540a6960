/**
 * Pixel AUROC + AUPRO: TypeScript (src/metrics) against the numpy/scipy reference
 * (scripts/metrics_golden.py --bench) on the same synthetic 256×256 maps and masks.
 *
 *   npm run bench:metrics                          sizes 400 and 1725 (full MVTec AD test set)
 *   node dist/bench/metrics.bench.js --sizes 400   chosen sizes only
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { evaluatePixelMetrics } from '../src/metrics';

const WIDTH = 256;
const HEIGHT = 256;
const PRO_LIMIT = 0.3;
const DEFECTIVE_SHARE = 0.7;
const PROJECT_ROOT = resolve(__dirname, '..', '..');
const GOLDEN_SCRIPT = join(PROJECT_ROOT, 'scripts', 'metrics_golden.py');

interface Dataset {
  readonly maps: Float32Array[];
  readonly masks: Uint8Array[];
  readonly mapData: Float32Array;
  readonly maskData: Uint8Array;
}

interface ReferenceResult {
  readonly auroc: number;
  readonly aupro: number;
  readonly seconds: number;
  readonly cpu_seconds: number;
  readonly peak_rss_mib: number;
}

function parseSizes(argv: readonly string[]): number[] {
  const flag = argv.indexOf('--sizes');
  if (flag < 0) return [400, 1725];
  const sizes = (argv[flag + 1] ?? '').split(',').map(Number);
  if (sizes.length === 0 || sizes.some((size) => !Number.isInteger(size) || size < 2)) {
    throw new Error(`--sizes needs comma-separated image counts >= 2, got "${argv[flag + 1] ?? ''}"`);
  }
  return sizes;
}

/** mulberry32: small, fast, deterministic. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ellipse {
  readonly cx: number;
  readonly cy: number;
  readonly cos: number;
  readonly sin: number;
  readonly rx: number;
  readonly ry: number;
}

/**
 * Smooth background (bilinear 9×9 grid) plus pixel noise; 70% of images get 1–3 elliptic
 * defects whose pixels, and a soft halo around them, score higher.
 */
function generateDataset(count: number, seed: number): Dataset {
  const random = seededRandom(seed);
  const pixels = WIDTH * HEIGHT;
  const mapData = new Float32Array(count * pixels);
  const maskData = new Uint8Array(count * pixels);
  const grid = 9;
  const coarse = new Float64Array(grid * grid);
  for (let m = 0; m < count; m++) {
    for (let g = 0; g < coarse.length; g++) coarse[g] = random() * 0.6;
    const ellipses: Ellipse[] = [];
    if (random() < DEFECTIVE_SHARE) {
      const defects = 1 + Math.floor(random() * 3);
      for (let d = 0; d < defects; d++) {
        const angle = random() * Math.PI;
        ellipses.push({
          cx: random() * WIDTH,
          cy: random() * HEIGHT,
          cos: Math.cos(angle),
          sin: Math.sin(angle),
          rx: 2 + random() * 30,
          ry: 2 + random() * 12,
        });
      }
    }
    const base = m * pixels;
    for (let y = 0; y < HEIGHT; y++) {
      const gy = (y / HEIGHT) * (grid - 1);
      const y0 = Math.floor(gy);
      const fy = gy - y0;
      for (let x = 0; x < WIDTH; x++) {
        const gx = (x / WIDTH) * (grid - 1);
        const x0 = Math.floor(gx);
        const fx = gx - x0;
        const top = coarse[y0 * grid + x0] * (1 - fx) + coarse[y0 * grid + x0 + 1] * fx;
        const bottom = coarse[(y0 + 1) * grid + x0] * (1 - fx) + coarse[(y0 + 1) * grid + x0 + 1] * fx;
        let nearest = Infinity;
        for (const e of ellipses) {
          const dx = x - e.cx;
          const dy = y - e.cy;
          const u = (dx * e.cos + dy * e.sin) / e.rx;
          const v = (dy * e.cos - dx * e.sin) / e.ry;
          nearest = Math.min(nearest, u * u + v * v);
        }
        const inside = nearest <= 1;
        const lift = inside ? 0.45 : nearest < 4 ? (0.25 * (4 - nearest)) / 3 : 0;
        mapData[base + y * WIDTH + x] = top * (1 - fy) + bottom * fy + 0.3 * random() + lift * (0.4 + random());
        if (inside) maskData[base + y * WIDTH + x] = 255;
      }
    }
  }
  const maps = Array.from({ length: count }, (_, m) => mapData.subarray(m * pixels, (m + 1) * pixels));
  const masks = Array.from({ length: count }, (_, m) => maskData.subarray(m * pixels, (m + 1) * pixels));
  return { maps, masks, mapData, maskData };
}

/** What one child process measured for one size (see runTypeScript). */
interface TypeScriptResult {
  readonly auroc: number;
  readonly aupro: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly dataMib: number;
  /** Resident memory with the dataset loaded, before the metrics. */
  readonly baselineRssMib: number;
  readonly peakRssMib: number;
}

/**
 * Child-process side: generates the dataset, writes it to `directory` for the reference,
 * then times the metrics; run in a fresh process per size so the memory figures belong to
 * that size alone.
 */
function runTypeScript(size: number, directory: string): TypeScriptResult {
  const dataset = generateDataset(size, 1000 + size);
  writeFileSync(join(directory, 'maps.f32'), new Uint8Array(dataset.mapData.buffer));
  writeFileSync(join(directory, 'masks.u8'), dataset.maskData);
  const meta = { count: size, width: WIDTH, height: HEIGHT, limit: PRO_LIMIT };
  writeFileSync(join(directory, 'meta.json'), JSON.stringify(meta));
  const baselineRssMib = process.memoryUsage().rss / 2 ** 20;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const metrics = evaluatePixelMetrics(dataset.maps, dataset.masks, WIDTH, HEIGHT, { proLimit: PRO_LIMIT });
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    auroc: metrics.auroc,
    aupro: metrics.aupro,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    dataMib: (dataset.mapData.byteLength + dataset.maskData.byteLength) / 2 ** 20,
    baselineRssMib,
    peakRssMib: process.resourceUsage().maxRSS / 1024,
  };
}

function runJson<T>(command: string, args: readonly string[]): T {
  return JSON.parse(execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 20 })) as T;
}

function main(): void {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    console.log(JSON.stringify(runTypeScript(Number(argv[1]), argv[2] ?? '')));
    return;
  }
  const sizes = parseSizes(argv);
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('the reference reads little-endian files');
  const timing: string[][] = [
    [
      'images',
      'Mpx',
      'TS s',
      'TS CPU s',
      'numpy s',
      'numpy CPU s',
      'speed-up',
      'speed-up CPU',
      'data MiB',
      'TS extra MiB',
      'TS peak RSS MiB',
      'numpy peak RSS MiB',
    ],
  ];
  const values: string[][] = [
    ['images', 'TS AUROC', 'numpy AUROC', '|Δ|', `TS AUPRO@${PRO_LIMIT}`, 'numpy AUPRO', '|Δ|'],
  ];
  for (const size of sizes) {
    const directory = mkdtempSync(join(tmpdir(), 'metrics-bench-'));
    try {
      const ts = runJson<TypeScriptResult>(process.execPath, [__filename, '--child', String(size), directory]);
      const numpy = runJson<ReferenceResult>('python3', [GOLDEN_SCRIPT, '--bench', directory]);
      timing.push([
        String(size),
        ((size * WIDTH * HEIGHT) / 1e6).toFixed(1),
        ts.seconds.toFixed(2),
        ts.cpuSeconds.toFixed(2),
        numpy.seconds.toFixed(2),
        numpy.cpu_seconds.toFixed(2),
        `${(numpy.seconds / ts.seconds).toFixed(1)}×`,
        `${(numpy.cpu_seconds / ts.cpuSeconds).toFixed(1)}×`,
        ts.dataMib.toFixed(0),
        Math.max(0, ts.peakRssMib - ts.baselineRssMib).toFixed(0),
        ts.peakRssMib.toFixed(0),
        numpy.peak_rss_mib.toFixed(0),
      ]);
      values.push([
        String(size),
        ts.auroc.toFixed(12),
        numpy.auroc.toFixed(12),
        Math.abs(ts.auroc - numpy.auroc).toExponential(1),
        ts.aupro.toFixed(12),
        numpy.aupro.toFixed(12),
        Math.abs(ts.aupro - numpy.aupro).toExponential(1),
      ]);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }
  printTable(timing);
  console.log();
  printTable(values);
  console.log();
  console.log('TS: evaluatePixelMetrics (AUROC + AUPRO + F1-max from one sort), each size in a fresh Node process;');
  console.log('numpy: scripts/metrics_golden.py --bench, one argsort shared by AUROC and AUPRO. Times exclude data');
  console.log('generation and file I/O. "TS extra" = peak RSS minus RSS with the dataset loaded; both peaks include');
  console.log('the data itself.');
}

function printTable(table: readonly string[][]): void {
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
  for (const [index, row] of table.entries()) {
    console.log(row.map((cell, column) => cell.padStart(widths[column])).join('  '));
    if (index === 0) console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  }
}

main();

// Where the default pre-processing runs (src/inference/preprocess-pool.ts): the default
// INFERENCE_RESIZE, pil-bilinear, is synchronous JavaScript, so with the default
// PREPROCESS_WORKERS it must run in the pool's thread, and the event loop keeps turning while a
// large image is resized; PREPROCESS_WORKERS=0 (an explicit opt-in) runs it on the loop.
// Every inspection and evaluation image goes through this pool (ModelRunner.preprocess).
import sharp from 'sharp';
import { loadConfig } from '../../src/config/config';
import { PreprocessPool } from '../../src/inference/preprocess-pool';
import { preprocessImage, resizeRgbPilBilinear, type PreprocessOptions } from '../../src/inference/preprocess';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/inference/tools/preprocess-parity';

// 12 MP: its pil-bilinear resize to 256² takes ~120–150 ms of one thread in plain Node here
// (~0.5 s under jest), against a few ms between two turns of an idle event loop. Measured: the
// longest stall ~9–15 ms through the pool, ~0.6–0.7 s inline.
const WIDTH = 4000;
const HEIGHT = 3000;

/** The longest the event loop went without running a 5 ms timer while `work` ran. */
async function longestStall(work: () => Promise<unknown>): Promise<{ stallMs: number; ticks: number }> {
  let last = performance.now();
  let stallMs = 0;
  let ticks = 0;
  let running = true;
  const tick = (): void => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
    ticks += 1;
    if (running) timer = setTimeout(tick, 5);
  };
  let timer = setTimeout(tick, 5);
  try {
    await work();
  } finally {
    running = false;
    clearTimeout(timer);
  }
  stallMs = Math.max(stallMs, performance.now() - last);
  return { stallMs, ticks };
}

let png: Buffer;
let options: PreprocessOptions;
let config: ReturnType<typeof loadConfig>;

beforeAll(async () => {
  config = loadConfig({});
  // A gradient, so that the resize has work to do in every pixel (a flat colour compresses to a tiny PNG all the same).
  const row = Buffer.alloc(WIDTH * 3);
  for (let x = 0; x < WIDTH; x++) row.fill(Math.floor((x * 256) / WIDTH), x * 3, x * 3 + 3);
  const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) row.copy(raw, y * WIDTH * 3);
  png = await sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
  options = {
    inputSize: [256, 256],
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    resize: config.inspections.resize,
    maxPixels: config.datasets.imageMaxPixels,
  };
});

test('the defaults: pil-bilinear, one pre-processing thread', () => {
  expect(config.inspections).toMatchObject({ resize: 'pil-bilinear', preprocessWorkers: 1 });
  expect(WIDTH * HEIGHT).toBeLessThanOrEqual(config.datasets.imageMaxPixels);
});

test('with the default settings the event loop keeps turning while a 12 MP image is resized (pil-bilinear); PREPROCESS_WORKERS=0 stalls it', async () => {
  // What the resize alone costs the thread that runs it.
  const decoded = { data: new Uint8Array(WIDTH * HEIGHT * 3), width: WIDTH, height: HEIGHT };
  let resizeMs = Infinity;
  for (let run = 0; run < 2; run++) {
    const started = performance.now();
    resizeRgbPilBilinear(decoded, 256, 256);
    resizeMs = Math.min(resizeMs, performance.now() - started);
  }

  const pool = new PreprocessPool(config.inspections.preprocessWorkers);
  const onLoop = new PreprocessPool(0);
  try {
    await pool.preprocess(png, options); // the thread started and warm
    const inPool = await longestStall(() => pool.preprocess(png, options));
    const inline = await longestStall(() => onLoop.preprocess(png, options));
    const expected = await preprocessImage(png, options);
    // Same tensor either way.
    expect(Buffer.from((await pool.preprocess(png, options)).tensor.buffer)).toEqual(
      Buffer.from(expected.tensor.buffer),
    );
    const measured = { resizeMs, inPool, inline };
    // On the loop the timer waits for the whole resize; from the pool it keeps firing.
    expect({ ...measured, inlineStallsForTheResize: inline.stallMs >= 0.5 * resizeMs }).toMatchObject({
      inlineStallsForTheResize: true,
    });
    expect({ ...measured, poolStallBelowHalfTheResize: inPool.stallMs < 0.5 * resizeMs }).toMatchObject({
      poolStallBelowHalfTheResize: true,
    });
  } finally {
    await pool.close();
    await onLoop.close();
  }
});

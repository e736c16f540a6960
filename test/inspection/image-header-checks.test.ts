// The image module's own guarantees (src/images/image-bytes.ts): the size a header declares is
// checked before any decoder runs, a file too short for the pixels it declares is refused from
// its header, and decoding never blocks the calling (main) thread.
import { ImageValidationError, inspectImageBytes, validateMask } from '../../src/images/image-bytes';
import { bmpOf, headerOnlyBmp } from '../support/bmp';
import { pngDeclaring } from '../support/png';

const LIMITS = { maxPixels: 50_000_000 };

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ImageValidationError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

test('a PNG header claiming 2^30 × 2^30 is too large, read from its IHDR', async () => {
  expect(await refusal(inspectImageBytes(pngDeclaring(2 ** 30, 2 ** 30), LIMITS))).toEqual({
    code: 'IMAGE_TOO_LARGE',
    message: 'the image has 1073741824×1073741824 pixels, more than the 50000000 allowed',
  });
});

test('a 54-byte BMP declaring 49 MP is refused from its header, before the BMP decoder runs', async () => {
  const header = headerOnlyBmp(7000, 7000);
  const refused = await refusal(inspectImageBytes(header, LIMITS));
  expect(refused.code).toBe('INVALID_IMAGE');
  expect(refused.message).toMatch(/^the BMP file is truncated: 7000×7000 at 24 bits per pixel needs 147000054 bytes/);
  // The same bytes as a mask: the mask's code.
  expect((await refusal(validateMask(header, 7000, 7000, LIMITS))).code).toBe('INVALID_MASK');
  // One pixel row short is refused as well; the whole file decodes.
  const whole = bmpOf(Buffer.alloc(300 * 200 * 3, 90), 300, 200);
  expect((await refusal(inspectImageBytes(whole.subarray(0, whole.length - 900), LIMITS))).code).toBe('INVALID_IMAGE');
  expect(await inspectImageBytes(whole, LIMITS)).toMatchObject({ format: 'bmp', width: 300, height: 200 });
});

test('decoding runs off the calling thread: its event loop keeps turning meanwhile', async () => {
  // A 12 MP BMP: bmp-ts is synchronous JavaScript, ~100 ms of it on the thread that runs it.
  const width = 4000;
  const height = 3000;
  const bmp = bmpOf(Buffer.alloc(width * height * 3, 128), width, height);
  let turns = 0;
  let decoding = true;
  const spin = (): void => {
    turns += 1;
    if (decoding) setImmediate(spin);
  };
  setImmediate(spin);
  const info = await inspectImageBytes(bmp, LIMITS);
  decoding = false;
  expect(info).toMatchObject({ format: 'bmp', width, height, channels: 1 });
  expect(turns).toBeGreaterThan(1);
});

import sharp from 'sharp';
import {
  decodeImageRgb,
  ImageValidationError,
  inspectImageBytes,
  sniffImageFormat,
  validateMask,
} from '../../src/images/image-bytes';

const LIMITS = { maxPixels: 1_000_000 };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ImageValidationError) return error.code;
    throw error;
  }
  throw new Error('expected a refusal');
}

function raw(
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  fill: (pixel: number, channel: number) => number,
): Buffer {
  const data = Buffer.alloc(width * height * channels);
  for (let pixel = 0; pixel < width * height; pixel += 1)
    for (let channel = 0; channel < channels; channel += 1) data[pixel * channels + channel] = fill(pixel, channel);
  return data;
}

function png(
  width: number,
  height: number,
  channels: 1 | 2 | 3 | 4,
  fill: (pixel: number, channel: number) => number,
): Promise<Buffer> {
  const image = sharp(raw(width, height, channels, fill), { raw: { width, height, channels } });
  return (channels <= 2 ? image.toColourspace('b-w') : image).png().toBuffer();
}

test('inspects PNG, JPEG and TIFF by their bytes, whatever they are called', async () => {
  const rgb = await png(20, 10, 3, (pixel, channel) => (pixel * 3 + channel * 50) % 256);
  expect(await inspectImageBytes(rgb, LIMITS)).toEqual({
    format: 'png',
    contentType: 'image/png',
    width: 20,
    height: 10,
    channels: 3,
  });
  expect(await inspectImageBytes(await sharp(rgb).jpeg().toBuffer(), LIMITS)).toMatchObject({
    format: 'jpeg',
    width: 20,
    height: 10,
  });
  expect(await inspectImageBytes(await sharp(rgb).tiff().toBuffer(), LIMITS)).toMatchObject({
    format: 'tiff',
    width: 20,
    height: 10,
  });
  expect(sniffImageFormat(Buffer.from('GIF89a'))).toBeNull();
  expect(await codeOf(inspectImageBytes(await sharp(rgb).webp().toBuffer(), LIMITS))).toBe('INVALID_IMAGE');
});

test('a grayscale image is one channel, expanded to three equal channels for inference', async () => {
  const gray = await png(4, 2, 1, (pixel) => pixel * 30);
  expect((await inspectImageBytes(gray, LIMITS)).channels).toBe(1);
  const decoded = await decodeImageRgb(gray, LIMITS);
  expect(decoded.pixels).toHaveLength(4 * 2 * 3);
  expect([...decoded.pixels.subarray(3, 6)]).toEqual([30, 30, 30]);
});

test('decompression bombs are refused from the header, before any pixel is decoded', async () => {
  const big = await sharp({ create: { width: 2000, height: 2000, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  expect(big.length).toBeLessThan(100_000);
  expect(await codeOf(inspectImageBytes(big, LIMITS))).toBe('IMAGE_TOO_LARGE');
  // A BMP header claiming 100000 × 100000 pixels in 54 bytes.
  const bmp = Buffer.alloc(54);
  bmp.write('BM', 0);
  bmp.writeUInt32LE(40, 14);
  bmp.writeInt32LE(100_000, 18);
  bmp.writeInt32LE(100_000, 22);
  bmp.writeUInt16LE(24, 28);
  expect(await codeOf(inspectImageBytes(bmp, LIMITS))).toBe('IMAGE_TOO_LARGE');
});

test('truncated files are refused, not half-read', async () => {
  const jpeg = await sharp(
    raw(64, 64, 3, (pixel, channel) => (pixel + channel * 7) % 256),
    { raw: { width: 64, height: 64, channels: 3 } },
  )
    .jpeg()
    .toBuffer();
  expect(await codeOf(inspectImageBytes(jpeg.subarray(0, jpeg.length / 2), LIMITS))).toBe('INVALID_IMAGE');
  const bmpHeaderOnly = Buffer.alloc(54);
  bmpHeaderOnly.write('BM', 0);
  bmpHeaderOnly.writeUInt32LE(40, 14);
  bmpHeaderOnly.writeInt32LE(8, 18);
  bmpHeaderOnly.writeInt32LE(8, 22);
  bmpHeaderOnly.writeUInt16LE(24, 28);
  expect(await codeOf(inspectImageBytes(bmpHeaderOnly, LIMITS))).toBe('INVALID_IMAGE');
});

describe('masks', () => {
  const square = (value: number) => (pixel: number) =>
    pixel % 8 >= 2 && pixel % 8 < 6 && pixel >= 16 && pixel < 48 ? value : 0;

  test('single-channel 0/255 and 0/1 masks, and grayscale stored as RGB, are accepted', async () => {
    expect(await validateMask(await png(8, 8, 1, square(255)), 8, 8, LIMITS)).toEqual({
      format: 'png',
      defectPixels: 16,
    });
    expect((await validateMask(await png(8, 8, 1, square(1)), 8, 8, LIMITS)).defectPixels).toBe(16);
    expect((await validateMask(await png(8, 8, 3, square(255)), 8, 8, LIMITS)).defectPixels).toBe(16);
  });

  test('refused: another size, grey levels, mixed 1 and 255, colour, transparency, nothing marked', async () => {
    expect(await codeOf(validateMask(await png(8, 8, 1, square(255)), 8, 9, LIMITS))).toBe('MASK_MISMATCH');
    expect(await codeOf(validateMask(await png(8, 8, 1, square(128)), 8, 8, LIMITS))).toBe('INVALID_MASK');
    expect(
      await codeOf(
        validateMask(await png(8, 8, 1, (pixel) => (pixel === 0 ? 1 : pixel === 1 ? 255 : 0)), 8, 8, LIMITS),
      ),
    ).toBe('INVALID_MASK');
    expect(
      await codeOf(
        validateMask(await png(8, 8, 3, (pixel, channel) => (channel === 0 ? square(255)(pixel) : 0)), 8, 8, LIMITS),
      ),
    ).toBe('INVALID_MASK');
    expect(
      await codeOf(
        validateMask(await png(8, 8, 2, (pixel, channel) => (channel === 1 ? 100 : square(255)(pixel))), 8, 8, LIMITS),
      ),
    ).toBe('INVALID_MASK');
    expect(await codeOf(validateMask(await png(8, 8, 1, () => 0), 8, 8, LIMITS))).toBe('INVALID_MASK');
    expect(await codeOf(validateMask(Buffer.from('nope'), 8, 8, LIMITS))).toBe('INVALID_MASK');
  });
});

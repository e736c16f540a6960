// The NPY encoder (src/formats/npy.ts) and the exact map objects that use it.
import { decodeMapObject, encodeMapObject } from '../../src/formats/anomaly-map-object';
import { decodeNpyFloat32, encodeNpyFloat32, isNpy, NpyFormatError } from '../../src/formats/npy';
import { loadWithNumpy } from '../support/numpy';

function sampleMatrix(height: number, width: number): Float32Array {
  return Float32Array.from({ length: height * width }, (_, index) => Math.sin(index) * 3.25 + index / 7);
}

describe('NPY float32 files', () => {
  test('version 1.0 header: magic, a <f4 C-order (height, width) dict, data aligned to 64 bytes', () => {
    const bytes = encodeNpyFloat32({ height: 3, width: 5, values: sampleMatrix(3, 5) });
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]));
    const headerLength = bytes.readUInt16LE(8);
    expect((10 + headerLength) % 64).toBe(0);
    const header = bytes.toString('latin1', 10, 10 + headerLength);
    expect(header.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }")).toBe(true);
    expect(header.endsWith('\n')).toBe(true);
    expect(bytes.length).toBe(10 + headerLength + 3 * 5 * 4);
    expect(bytes.readFloatLE(10 + headerLength + 4)).toBe(sampleMatrix(3, 5)[1]);
  });

  test('round trip, exact values, any shape (including empty)', () => {
    for (const [height, width] of [
      [1, 1],
      [7, 13],
      [256, 256],
      [0, 4],
    ] as const) {
      const values = sampleMatrix(height, width);
      const decoded = decodeNpyFloat32(encodeNpyFloat32({ height, width, values }));
      expect(decoded).toEqual({ height, width, values });
    }
  });

  test('refuses a wrong value count, and bytes that are not a float32 2-D array', () => {
    expect(() => encodeNpyFloat32({ height: 2, width: 2, values: new Float32Array(5) })).toThrow(RangeError);
    expect(() => decodeNpyFloat32(Buffer.from('AMAP and more bytes'))).toThrow(NpyFormatError);
    const good = encodeNpyFloat32({ height: 2, width: 2, values: sampleMatrix(2, 2) });
    expect(() => decodeNpyFloat32(good.subarray(0, good.length - 1))).toThrow(NpyFormatError);
    const float64 = Buffer.from(good);
    float64.write("'<f8'", 10 + "{'descr': ".length, 'latin1');
    expect(() => decodeNpyFloat32(float64)).toThrow(/not a little-endian float32 array/);
  });

  test('exact map objects are NPY files now; AMAP objects (quantised and old float32 ones) still decode', () => {
    const values = sampleMatrix(4, 6);
    const exact = encodeMapObject(values, 6, 4, { exact: true });
    expect(isNpy(exact)).toBe(true);
    expect(decodeMapObject(exact)).toEqual({ width: 6, height: 4, map: values });

    const quantised = encodeMapObject(values, 6, 4);
    expect(quantised.toString('ascii', 0, 4)).toBe('AMAP');
    expect(decodeMapObject(quantised).width).toBe(6);

    // An AMAP float32 object (encoding 2), as inspections wrote them before.
    const header = Buffer.alloc(32);
    header.write('AMAP', 0, 'ascii');
    header.writeUInt8(1, 4);
    header.writeUInt8(2, 5);
    header.writeUInt32LE(6, 8);
    header.writeUInt32LE(4, 12);
    const old = Buffer.concat([header, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]);
    expect(decodeMapObject(old)).toEqual({ width: 6, height: 4, map: values });
  });

  test('numpy.load reads the file: dtype, shape and values', async () => {
    const values = sampleMatrix(5, 9);
    const loaded = await loadWithNumpy(encodeNpyFloat32({ height: 5, width: 9, values }));
    if (!loaded) {
      console.warn('no python3 with numpy here (nor .venv-training): numpy.load was not tried');
      return;
    }
    expect(loaded.dtype).toBe('<f4');
    expect(loaded.shape).toEqual([5, 9]);
    expect(loaded.max).toBe(Math.max(...values));
    expect(loaded.min).toBe(Math.min(...values));
    expect(loaded.sum).toBeCloseTo(
      values.reduce((sum, value) => sum + value, 0),
      6,
    );
  });
});

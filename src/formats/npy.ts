/**
 * NumPy's own file format (NPY version 1.0), for float32 2-D arrays: what `numpy.load` reads
 * with no other code. Layout: "\x93NUMPY", version 1.0, a little-endian uint16 header length,
 * an ASCII Python dict literal padded with spaces and ending in "\n" so that the data starts at
 * a multiple of 64 bytes, then the values in C (row-major) order.
 * https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import os from 'node:os';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const PREAMBLE_BYTES = MAGIC.length + 2 + 2;
const ALIGNMENT = 64;
const LITTLE_ENDIAN = os.endianness() === 'LE';

export const NPY_CONTENT_TYPE = 'application/octet-stream';

export interface Float32Matrix {
  /** Rows. */
  height: number;
  /** Columns. */
  width: number;
  /** height × width values, row after row. */
  values: Float32Array;
}

export class NpyFormatError extends Error {
  override readonly name = 'NpyFormatError';
}

export function isNpy(bytes: Buffer): boolean {
  return bytes.length >= PREAMBLE_BYTES && bytes.subarray(0, MAGIC.length).equals(MAGIC);
}

/** A `<f4`, C-order array of shape (height, width). */
export function encodeNpyFloat32({ height, width, values }: Float32Matrix): Buffer {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0)
    throw new RangeError(`not an array shape: (${height}, ${width})`);
  if (values.length !== height * width)
    throw new RangeError(`a (${height}, ${width}) array has ${height * width} values, got ${values.length}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${height}, ${width}), }`;
  const unpadded = PREAMBLE_BYTES + dict.length + 1;
  const headerLength = dict.length + 1 + ((ALIGNMENT - (unpadded % ALIGNMENT)) % ALIGNMENT);
  const preamble = Buffer.alloc(PREAMBLE_BYTES + headerLength, 0x20);
  MAGIC.copy(preamble, 0);
  preamble.writeUInt8(1, MAGIC.length);
  preamble.writeUInt8(0, MAGIC.length + 1);
  preamble.writeUInt16LE(headerLength, MAGIC.length + 2);
  preamble.write(dict, PREAMBLE_BYTES, 'ascii');
  preamble.write('\n', preamble.length - 1, 'ascii');
  const data = Buffer.alloc(values.length * 4);
  if (LITTLE_ENDIAN) Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(data);
  else for (let i = 0; i < values.length; i++) data.writeFloatLE(values[i] as number, i * 4);
  return Buffer.concat([preamble, data]);
}

/** Reads back what encodeNpyFloat32 writes (any version 1.0 or 2.0 `<f4` C-order 2-D array). */
export function decodeNpyFloat32(bytes: Buffer): Float32Matrix {
  if (!isNpy(bytes)) throw new NpyFormatError('not an NPY file');
  const major = bytes.readUInt8(MAGIC.length);
  if (major !== 1 && major !== 2) throw new NpyFormatError(`unsupported NPY version ${major}`);
  const lengthBytes = major === 1 ? 2 : 4;
  const headerStart = MAGIC.length + 2 + lengthBytes;
  if (bytes.length < headerStart) throw new NpyFormatError('truncated NPY header');
  const headerLength = major === 1 ? bytes.readUInt16LE(MAGIC.length + 2) : bytes.readUInt32LE(MAGIC.length + 2);
  const dataStart = headerStart + headerLength;
  if (bytes.length < dataStart) throw new NpyFormatError('truncated NPY header');
  const header = bytes.toString('latin1', headerStart, dataStart);
  if (!/'descr':\s*'<f4'/.test(header)) throw new NpyFormatError(`not a little-endian float32 array: ${header.trim()}`);
  if (!/'fortran_order':\s*False/.test(header)) throw new NpyFormatError('not a C-order array');
  const shape = /'shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)/.exec(header);
  if (!shape) throw new NpyFormatError(`not a 2-D array: ${header.trim()}`);
  const height = Number(shape[1]);
  const width = Number(shape[2]);
  const data = bytes.subarray(dataStart);
  if (data.length !== height * width * 4)
    throw new NpyFormatError(
      `a (${height}, ${width}) float32 array needs ${height * width * 4} bytes, got ${data.length}`,
    );
  const values = new Float32Array(height * width);
  for (let i = 0; i < values.length; i++) values[i] = data.readFloatLE(i * 4);
  return { height, width, values };
}

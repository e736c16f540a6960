// Test images in a format sharp cannot write.

/** The 54-byte header (BITMAPINFOHEADER) of a 24-bit BMP of `width` × `height`, declaring `fileSize` bytes. */
function bmpHeader(width: number, height: number, fileSize: number): Buffer {
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(fileSize, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(24, 28);
  return header;
}

/** A 24-bit bottom-up BMP of RGB pixels. */
export function bmpOf(rgb: Buffer, width: number, height: number): Buffer {
  const rowSize = Math.ceil((width * 3) / 4) * 4;
  const pixels = Buffer.alloc(rowSize * height);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const source = ((height - 1 - y) * width + x) * 3;
      const target = y * rowSize + x * 3;
      pixels[target] = rgb[source + 2] ?? 0;
      pixels[target + 1] = rgb[source + 1] ?? 0;
      pixels[target + 2] = rgb[source] ?? 0;
    }
  }
  return Buffer.concat([bmpHeader(width, height, 54 + pixels.length), pixels]);
}

/** A header-only BMP (54 bytes) declaring a 24-bit image of `width` × `height`. */
export function headerOnlyBmp(width: number, height: number): Buffer {
  return bmpHeader(width, height, 54);
}

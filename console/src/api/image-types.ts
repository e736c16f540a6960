/** The image types the service takes (PNG, JPEG, BMP, TIFF), by file extension. */
const CONTENT_TYPES_BY_EXTENSION: Readonly<Record<string, string>> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
};
const ACCEPTED_CONTENT_TYPES = new Set(Object.values(CONTENT_TYPES_BY_EXTENSION));

/** For <input accept>: the content types and the extensions. */
export const ACCEPT_IMAGE_FILES = [
  ...ACCEPTED_CONTENT_TYPES,
  ...Object.keys(CONTENT_TYPES_BY_EXTENSION).map((extension) => `.${extension}`),
].join(',');

/**
 * The content type to declare for an image file: the one its extension names (browsers often give
 * BMP and TIFF files no type, or a legacy one such as image/x-ms-bmp), else the browser's when the
 * service takes it; null for a file the service would not take.
 */
export function imageContentType(file: { name: string; type: string }): string | null {
  const extension = /\.([^./]+)$/.exec(file.name)?.[1]?.toLowerCase();
  const byExtension = extension ? CONTENT_TYPES_BY_EXTENSION[extension] : undefined;
  if (byExtension) return byExtension;
  return ACCEPTED_CONTENT_TYPES.has(file.type) ? file.type : null;
}

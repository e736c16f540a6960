/** The content types requestInspectionUpload accepts. */
const ACCEPTED_TYPES = ['image/png', 'image/jpeg', 'image/bmp', 'image/tiff'];

const TYPE_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  bmp: 'image/bmp',
  tif: 'image/tiff',
  tiff: 'image/tiff',
};

/** What the file input offers to pick. */
export const ACCEPT_ATTRIBUTE = [...ACCEPTED_TYPES, ...Object.keys(TYPE_BY_EXTENSION).map((ext) => `.${ext}`)].join(
  ',',
);

/**
 * The content type to declare for a file: the browser's, else the one its extension names (browsers
 * often give BMP and TIFF files no type, or a legacy one such as image/x-ms-bmp). Anything else is
 * declared as it is, and the service refuses it with its own code.
 */
export function imageContentType(file: { name: string; type: string }): string {
  if (ACCEPTED_TYPES.includes(file.type)) return file.type;
  const extension = file.name.split('.').pop()?.toLowerCase() ?? '';
  return TYPE_BY_EXTENSION[extension] ?? (file.type || 'application/octet-stream');
}

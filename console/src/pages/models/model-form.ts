/** A version name from an uploaded file's name: "padim-bottle.onnx" → "padim-bottle". */
export function modelNameFromFilename(filename: string): string {
  return filename.replace(/\.onnx$/i, '').trim();
}

export type ThresholdInput = { valid: true; value: number | null } | { valid: false };

/** A typed raw-score threshold: empty means none (the service's default), else a finite number. */
export function parseThreshold(text: string): ThresholdInput {
  if (text.trim() === '') return { valid: true, value: null };
  const value = Number(text);
  return Number.isFinite(value) ? { valid: true, value } : { valid: false };
}

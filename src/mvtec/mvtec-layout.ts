/**
 * The MVTec AD folder layout, exactly as the public dataset ships it:
 *
 *   <category>/train/good/*.png
 *   <category>/test/good/*.png
 *   <category>/test/<defect>/*.png
 *   <category>/ground_truth/<defect>/<stem>_mask.png
 *
 * Masks are paired with their images by file stem (000.png ↔ 000_mask.png), never by sort
 * order. What cannot be paired or does not belong is reported, not silently dropped.
 */
import { ImageSplit } from '../db/entities/image.entity';
import { ErrorCode } from '../errors';
import { isPlainFolderName } from '../domain/dataset-rules';

export interface MvtecSample {
  split: ImageSplit;
  /** null for good images. */
  defectType: string | null;
  /** Relative to the category folder, '/'-separated, e.g. `test/crack/000.png`. */
  imagePath: string;
  /** e.g. `ground_truth/crack/000_mask.png`; only for defective test images. */
  maskPath: string | null;
}

export interface LayoutProblem {
  /** Relative to the category folder. */
  path: string;
  code: string;
  message: string;
}

export interface CategoryPlan {
  samples: MvtecSample[];
  problems: LayoutProblem[];
}

const IMAGE_EXTENSION = /\.(png|jpe?g|bmp|tiff?)$/i;
const MASK_SUFFIX = /^(.+)_mask\.(png|jpe?g|bmp|tiff?)$/i;
const GOOD = 'good';

function stemOf(filename: string): string {
  return filename.replace(IMAGE_EXTENSION, '');
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Plans the import of one category from the paths of every file below its folder. Hidden
 * files (".DS_Store") and files at the top of the category folder (readme, license) are
 * ignored; anything else that does not fit the layout is reported.
 */
export function planCategoryImport(files: readonly string[]): CategoryPlan {
  const problems: LayoutProblem[] = [];
  const unexpected = (path: string, why: string): void => {
    problems.push({ path, code: ErrorCode.UNEXPECTED_FILE, message: `${why}; not imported` });
  };
  const images: Array<{ split: ImageSplit; defectType: string | null; path: string; filename: string }> = [];
  /** `<defect>/<stem>` → mask paths */
  const masks = new Map<string, string[]>();

  for (const path of [...files].sort(compareText)) {
    const parts = path.split('/');
    if (parts.some((part) => part.startsWith('.')) || parts.length === 1) continue;
    const [top, folder, filename] = parts as [string, string, string | undefined];
    if (parts.length !== 3 || filename === undefined) {
      unexpected(path, 'not in train/<label>/, test/<label>/ or ground_truth/<defect>/');
      continue;
    }
    if (top === 'ground_truth') {
      const mask = MASK_SUFFIX.exec(filename);
      if (!mask?.[1] || folder === GOOD || !isPlainFolderName(folder)) {
        unexpected(path, 'ground-truth files must be ground_truth/<defect>/<stem>_mask.png');
        continue;
      }
      const key = `${folder}/${mask[1]}`;
      masks.set(key, [...(masks.get(key) ?? []), path]);
      continue;
    }
    if (top !== 'train' && top !== 'test') {
      unexpected(path, 'not in train/, test/ or ground_truth/');
      continue;
    }
    if (!IMAGE_EXTENSION.test(filename)) {
      unexpected(path, 'not a .png, .jpg, .bmp or .tif file');
      continue;
    }
    if (folder !== GOOD && (top === 'train' || !isPlainFolderName(folder))) {
      unexpected(path, top === 'train' ? 'train/ holds only good/ images' : `"${folder}" is not a plain folder name`);
      continue;
    }
    images.push({
      split: top === 'train' ? ImageSplit.TRAIN : ImageSplit.TEST,
      defectType: folder === GOOD ? null : folder,
      path,
      filename,
    });
  }

  const samples: MvtecSample[] = [];
  const pairedMasks = new Set<string>();
  for (const image of images) {
    if (image.defectType === null) {
      samples.push({ split: image.split, defectType: null, imagePath: image.path, maskPath: null });
      continue;
    }
    const key = `${image.defectType}/${stemOf(image.filename)}`;
    const candidates = masks.get(key);
    if (!candidates?.[0]) {
      problems.push({
        path: image.path,
        code: ErrorCode.MASK_MISSING,
        message: `no ground_truth/${image.defectType}/${stemOf(image.filename)}_mask.png for this defective image; not imported`,
      });
      continue;
    }
    pairedMasks.add(key);
    if (candidates.length > 1) {
      for (const extra of candidates.slice(1)) unexpected(extra, `a second mask for ${image.path}`);
    }
    samples.push({ split: image.split, defectType: image.defectType, imagePath: image.path, maskPath: candidates[0] });
  }
  for (const [key, paths] of masks) {
    if (pairedMasks.has(key)) continue;
    const [defect, stem] = key.split('/') as [string, string];
    for (const path of paths) {
      problems.push({
        path,
        code: ErrorCode.IMAGE_MISSING,
        message: `no test/${defect}/${stem}.png for this mask; not imported`,
      });
    }
  }
  return { samples, problems };
}

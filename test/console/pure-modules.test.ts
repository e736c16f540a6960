// The console's pure modules (no React, no network): what each page computes from the API's data.
import { imageContentType } from '../../console/src/api/image-types';
import { curvePlotData } from '../../console/src/pages/evaluations/curve-data';
import { parseAuproLimit, progressText } from '../../console/src/pages/evaluations/evaluation-status';
import { filtersFromParams, filtersToParams, imagesArguments } from '../../console/src/pages/datasets/image-filters';
import { regionBoxPercent } from '../../console/src/pages/inspect/region-box';
import { gaugePercent, gaugeScale } from '../../console/src/pages/inspect/score-gauge';
import { mergeFeed, prependLive } from '../../console/src/pages/live/feed-entries';
import { modelNameFromFilename, parseThreshold } from '../../console/src/pages/models/model-form';
import { chunk, fileIndexOfArgument, summaryLine } from '../../console/src/pages/upload/upload-files';
import { roleAllows } from '../../console/src/session/roles';

test('roles: ADMIN ⊃ LABELER ⊃ VIEWER, as the service checks them', () => {
  expect(roleAllows('ADMIN', 'LABELER')).toBe(true);
  expect(roleAllows('LABELER', 'LABELER')).toBe(true);
  expect(roleAllows('VIEWER', 'LABELER')).toBe(false);
  expect(roleAllows('LABELER', 'ADMIN')).toBe(false);
});

test('image content types: by extension first (BMP/TIFF often come untyped), else an accepted browser type', () => {
  expect(imageContentType({ name: 'a.BMP', type: '' })).toBe('image/bmp');
  expect(imageContentType({ name: 'scan.tif', type: 'image/x-tiff' })).toBe('image/tiff');
  expect(imageContentType({ name: 'photo', type: 'image/jpeg' })).toBe('image/jpeg');
  expect(imageContentType({ name: 'notes.txt', type: 'text/plain' })).toBeNull();
  expect(imageContentType({ name: 'archive.png.zip', type: 'application/zip' })).toBeNull();
});

test('upload: batches, the file a refused request names, the summary line', () => {
  expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
  expect(fileIndexOfArgument('files[3].byteSize')).toBe(3);
  expect(fileIndexOfArgument('categoryId')).toBeNull();
  expect(fileIndexOfArgument(undefined)).toBeNull();
  const summary = { stored: 2, refused: 1, failed: 0, stopped: 0, skipped: 1, queued: 0, inProgress: 0 };
  expect(summaryLine(summary)).toBe('2 stored, 1 refused, 1 skipped');
});

test('image filters: a defect type implies defective, good has none; the URL round-trips; absent arguments are left out', () => {
  const filters = filtersFromParams(new URLSearchParams('split=TEST&defect=crack'));
  expect(filters).toEqual({ split: 'TEST', label: 'defective', defectType: 'crack' });
  expect(filtersFromParams(filtersToParams(filters))).toEqual(filters);
  expect(filtersFromParams(new URLSearchParams('label=good&defect=crack')).defectType).toBeNull();
  expect(filtersFromParams(new URLSearchParams('split=VALIDATION')).split).toBeNull();
  expect(imagesArguments(filters)).toEqual({ split: 'TEST', good: false, defectType: 'crack' });
  expect(imagesArguments({ split: null, label: null, defectType: null })).toEqual({});
});

test('region boxes stay on the region at any displayed size: percentages of the inspected image', () => {
  expect(regionBoxPercent({ x: 64, y: 32, width: 32, height: 64 }, { width: 256, height: 128 })).toEqual({
    left: '25%',
    top: '25%',
    width: '12.5%',
    height: '50%',
  });
});

test('score gauge: 0 to a quarter past the larger of score and threshold; positions clamped', () => {
  const scale = gaugeScale(2, 1.6);
  expect(scale.min).toBe(0);
  expect(scale.max).toBeCloseTo(2.5, 12);
  expect(gaugePercent(2, scale)).toBeCloseTo(80, 10);
  expect(gaugePercent(99, scale)).toBe(100);
  expect(gaugeScale(-1, 1).min).toBe(-1);
  expect(gaugeScale(0, 0)).toEqual({ min: 0, max: 1 });
});

test('live feed: newest first, each inspection once, at most the capacity', () => {
  const at = (id: string, second: number) => ({
    id,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, second)).toISOString(),
  });
  const live = [at('c', 30), at('b', 20)];
  const recent = [at('b', 20), at('a', 10)];
  expect(mergeFeed(live, recent).map((item) => item.id)).toEqual(['c', 'b', 'a']);
  expect(mergeFeed(live, recent, 2).map((item) => item.id)).toEqual(['c', 'b']);
  expect(prependLive([1, 2, 3], 0, 3)).toEqual([0, 1, 2]);
  expect(prependLive(undefined, 0)).toEqual([0]);
});

test('curves: the chance diagonal spans 0..1 without drawing the curve where it has no point', () => {
  expect(curvePlotData([{ x: 0.2, y: 0.5 }], false)).toEqual([[0.2], [0.5]]);
  expect(curvePlotData([{ x: 0.2, y: 0.5 }], true)).toEqual([
    [0, 0.2, 1],
    [null, 0.5, null],
    [0, 0.2, 1],
  ]);
  expect(
    curvePlotData(
      [
        { x: 0, y: 0 },
        { x: 1, y: 1 },
      ],
      true,
    )[1],
  ).toEqual([0, 1]);
});

test('evaluation form and progress: AUPRO limit in (0, 1]; progress text', () => {
  expect(parseAuproLimit('0.3')).toBe(0.3);
  expect(parseAuproLimit('1')).toBe(1);
  expect(parseAuproLimit('0')).toBeNull();
  expect(parseAuproLimit('')).toBeNull();
  expect(parseAuproLimit('abc')).toBeNull();
  expect(progressText('RUNNING', 12, 16)).toBe('12 / 16 images');
  expect(progressText('QUEUED', 0, 16)).toBe('Queued: 16 images to run');
});

test('model form: the name from the file name; a threshold is empty (none) or a finite number', () => {
  expect(modelNameFromFilename('padim-bottle.ONNX')).toBe('padim-bottle');
  expect(parseThreshold('')).toEqual({ valid: true, value: null });
  expect(parseThreshold('2.5')).toEqual({ valid: true, value: 2.5 });
  expect(parseThreshold('x')).toEqual({ valid: false });
});

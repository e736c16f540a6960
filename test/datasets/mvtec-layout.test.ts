import { planCategoryImport } from '../../src/mvtec/mvtec-layout';

test('pairs masks with images by stem, not by sort order', () => {
  // Sorted, the masks would line up with the wrong images (010 sorts before 2).
  const plan = planCategoryImport([
    'test/crack/2.png',
    'test/crack/010.png',
    'ground_truth/crack/010_mask.png',
    'ground_truth/crack/2_mask.png',
    'train/good/000.png',
    'test/good/000.png',
  ]);
  expect(plan.problems).toEqual([]);
  expect(plan.samples).toEqual(
    expect.arrayContaining([
      { split: 'TEST', defectType: 'crack', imagePath: 'test/crack/2.png', maskPath: 'ground_truth/crack/2_mask.png' },
      {
        split: 'TEST',
        defectType: 'crack',
        imagePath: 'test/crack/010.png',
        maskPath: 'ground_truth/crack/010_mask.png',
      },
      { split: 'TRAIN', defectType: null, imagePath: 'train/good/000.png', maskPath: null },
      { split: 'TEST', defectType: null, imagePath: 'test/good/000.png', maskPath: null },
    ]),
  );
  expect(plan.samples).toHaveLength(4);
});

test('reports images without masks, masks without images and files out of place', () => {
  const plan = planCategoryImport([
    'readme.txt',
    '.DS_Store',
    'train/good/.hidden.png',
    'test/hole/000.png',
    'test/hole/001.png',
    'ground_truth/hole/001_mask.png',
    'ground_truth/hole/002_mask.png',
    'ground_truth/scratch/000_mask.png',
    'train/crack/000.png',
    'test/good/deep/000.png',
    'test/good/notes.txt',
    'validation/good/000.png',
    'ground_truth/hole/001.png',
  ]);
  expect(plan.samples).toEqual([
    { split: 'TEST', defectType: 'hole', imagePath: 'test/hole/001.png', maskPath: 'ground_truth/hole/001_mask.png' },
  ]);
  expect(plan.problems.map((problem) => [problem.path, problem.code]).sort()).toEqual(
    [
      ['test/hole/000.png', 'MASK_MISSING'],
      ['ground_truth/hole/002_mask.png', 'IMAGE_MISSING'],
      ['ground_truth/scratch/000_mask.png', 'IMAGE_MISSING'],
      ['train/crack/000.png', 'UNEXPECTED_FILE'],
      ['test/good/deep/000.png', 'UNEXPECTED_FILE'],
      ['test/good/notes.txt', 'UNEXPECTED_FILE'],
      ['validation/good/000.png', 'UNEXPECTED_FILE'],
      ['ground_truth/hole/001.png', 'UNEXPECTED_FILE'],
    ].sort(),
  );
});

/** Image-level labels and scores derived from pixel-level masks and anomaly maps. */

/** How an image's anomaly score is derived from its anomaly map. */
export const IMAGE_SCORE_RULE = 'max' as const;

/** 1 for each mask with at least one defect (nonzero) pixel, else 0. */
export function imageLabelsFromMasks(masks: readonly Uint8Array[]): Uint8Array {
  const labels = new Uint8Array(masks.length);
  masks.forEach((mask, m) => {
    labels[m] = mask.some((value) => value !== 0) ? 1 : 0;
  });
  return labels;
}

/** The image score of each map by {@link IMAGE_SCORE_RULE}: its maximum pixel value. */
export function imageScoresFromMaps(maps: readonly Float32Array[]): Float64Array {
  const scores = new Float64Array(maps.length);
  maps.forEach((map, m) => {
    if (map.length === 0) throw new RangeError(`map ${m} is empty`);
    let max = -Infinity;
    for (let i = 0; i < map.length; i++) {
      const value = map[i];
      if (value > max) max = value;
      else if (value !== value) throw new RangeError(`map ${m} has NaN at pixel ${i}`);
    }
    scores[m] = max;
  });
  return scores;
}

/** The raw-score range a gauge shows: from 0 (or below, for a negative score) to a quarter past the larger of score and threshold. */
export interface GaugeScale {
  min: number;
  max: number;
}

export function gaugeScale(score: number, threshold: number): GaugeScale {
  const min = Math.min(0, score, threshold);
  const highest = Math.max(score, threshold);
  const span = highest - min;
  return span > 0 ? { min, max: highest + span * 0.25 } : { min, max: min + 1 };
}

/** Where `value` sits on the scale, in percent of the gauge's width (clamped to 0–100). */
export function gaugePercent(value: number, scale: GaugeScale): number {
  const fraction = (value - scale.min) / (scale.max - scale.min);
  return Math.min(100, Math.max(0, fraction * 100));
}

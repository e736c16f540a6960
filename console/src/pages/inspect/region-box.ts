export interface RegionRectangle {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A region's box as percentages of the inspected image, so that it stays on the region at whatever
 * size the image is displayed (the overlay PNG has the inspected image's size).
 */
export function regionBoxPercent(
  region: RegionRectangle,
  image: { width: number; height: number },
): { left: string; top: string; width: string; height: string } {
  const percent = (value: number, total: number) => `${(value / total) * 100}%`;
  return {
    left: percent(region.x, image.width),
    top: percent(region.y, image.height),
    width: percent(region.width, image.width),
    height: percent(region.height, image.height),
  };
}

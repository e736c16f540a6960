import { useCallback, useState } from 'react';

/**
 * The pages of a Relay connection loaded so far, as the `after` cursor of each: `null` for the
 * first, then the endCursor of the page before. Each page is queried by a component of its own,
 * so a page that has loaded stays as it is while the next one loads.
 */
export function useCursorPages(): { cursors: Array<string | null>; loadAfter(endCursor: string): void } {
  const [cursors, setCursors] = useState<Array<string | null>>([null]);
  const loadAfter = useCallback(
    (endCursor: string) =>
      setCursors((previous) => (previous.includes(endCursor) ? previous : [...previous, endCursor])),
    [],
  );
  return { cursors, loadAfter };
}

import { useEffect, useEffectEvent, useRef } from 'react';

/** Prefetch a little before the end is on screen, so that scrolling rarely waits. */
const AHEAD = '240px';

/** The end of a list: calls onVisible when it scrolls into view (and at once if it is in view). */
export function InfiniteScrollSentinel({ onVisible }: { onVisible(): void }) {
  const element = useRef<HTMLParagraphElement>(null);
  const reached = useEffectEvent(onVisible);
  useEffect(() => {
    const target = element.current;
    if (!target) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) reached();
      },
      { rootMargin: `0px 0px ${AHEAD} 0px` },
    );
    observer.observe(target);
    return () => observer.disconnect();
  }, []);
  return (
    <p ref={element} className="category-images-status muted" data-testid="images-sentinel">
      Scroll for more images…
    </p>
  );
}

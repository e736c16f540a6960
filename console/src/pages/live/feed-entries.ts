/** How many inspections the feed keeps; older ones drop off the end. */
export const FEED_CAPACITY = 100;

export interface FeedItem {
  id: string;
  createdAt: string;
}

/**
 * The feed: inspections that arrived live and the recent ones loaded when it opened, each once,
 * newest first, at most `capacity`.
 */
export function mergeFeed<T extends FeedItem>(live: readonly T[], recent: readonly T[], capacity = FEED_CAPACITY): T[] {
  const byId = new Map<string, T>();
  for (const item of [...live, ...recent]) if (!byId.has(item.id)) byId.set(item.id, item);
  return [...byId.values()]
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id))
    .slice(0, capacity);
}

/** Prepends an inspection that arrived live to those before it, keeping at most `capacity`. */
export function prependLive<T>(earlier: readonly T[] | undefined, item: T, capacity = FEED_CAPACITY): T[] {
  return [item, ...(earlier ?? [])].slice(0, capacity);
}

export function LiveFeedPage() {
  return <p>LiveFeedPage: not built yet.</p>;
}

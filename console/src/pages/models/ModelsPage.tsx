export function ModelsPage() {
  return <p>ModelsPage: not built yet.</p>;
}

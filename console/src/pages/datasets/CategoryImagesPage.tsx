export function CategoryImagesPage() {
  return <p>CategoryImagesPage: not built yet.</p>;
}

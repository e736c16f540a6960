export function DatasetsPage() {
  return <p>DatasetsPage: not built yet.</p>;
}

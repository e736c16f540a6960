export function InspectPage() {
  return <p>InspectPage: not built yet.</p>;
}

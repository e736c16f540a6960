export function EvaluationsPage() {
  return <p>EvaluationsPage: not built yet.</p>;
}

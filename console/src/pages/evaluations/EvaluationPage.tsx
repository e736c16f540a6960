export function EvaluationPage() {
  return <p>EvaluationPage: not built yet.</p>;
}

/** "Active model name vN", or that the category has none. */
export function ActiveModelLabel({ model }: { model: { name: string; version: number } | null | undefined }) {
  if (!model) return <span className="muted">No active model</span>;
  return (
    <>
      Active model{' '}
      <strong>
        {model.name} v{model.version}
      </strong>
    </>
  );
}

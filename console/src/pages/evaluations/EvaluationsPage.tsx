import { useSession } from '../../session/session';
import { CategoryPicker, useSelectedCategory } from '../../ui/CategoryPicker';
import { EvaluationList } from './EvaluationList';
import { StartEvaluationForm } from './StartEvaluationForm';
import './evaluations.css';

/** A category's evaluations, newest first, and (LABELER and up) a form to start one. */
export function EvaluationsPage() {
  const { can } = useSession();
  const [categoryId, selectCategory] = useSelectedCategory();
  return (
    <section className="evaluations-page">
      <h1>Evaluations</h1>
      <div className="toolbar">
        <CategoryPicker value={categoryId} onChange={selectCategory} />
      </div>
      {categoryId ? (
        <>
          {can('LABELER') ? <StartEvaluationForm key={categoryId} categoryId={categoryId} /> : null}
          <EvaluationList key={categoryId} categoryId={categoryId} />
        </>
      ) : (
        <p className="muted">Choose a category to see its evaluations.</p>
      )}
    </section>
  );
}

import { useSession } from '../../session/session';
import { CategoryPicker, useSelectedCategory } from '../../ui/CategoryPicker';
import { ModelTable } from './ModelTable';
import { RegisterModelForm } from './RegisterModelForm';
import './models.css';

/** A category's model versions; an ADMIN also registers, activates and re-thresholds them. */
export function ModelsPage() {
  const { can } = useSession();
  const [categoryId, selectCategory] = useSelectedCategory();
  return (
    <section className="models-page">
      <h1>Models</h1>
      <div className="toolbar">
        <CategoryPicker value={categoryId} onChange={selectCategory} />
      </div>
      {categoryId ? (
        <>
          {can('ADMIN') ? <RegisterModelForm key={categoryId} categoryId={categoryId} /> : null}
          <ModelTable key={categoryId} categoryId={categoryId} />
        </>
      ) : (
        <p className="muted">Choose a category to see its model versions.</p>
      )}
    </section>
  );
}

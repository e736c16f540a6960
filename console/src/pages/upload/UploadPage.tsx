import { useEffect } from 'react';
import { Link } from 'react-router-dom';
import { CategoryPicker, useSelectedCategory } from '../../ui/CategoryPicker';
import { FileDropZone } from './FileDropZone';
import { UploadFileList } from './UploadFileList';
import { summarize, summaryLine } from './upload-files';
import { useImageUpload } from './useImageUpload';
import './upload.css';

export function UploadPage() {
  const [categoryId, selectCategory] = useSelectedCategory();
  const { items, running, add, clear, start, stop } = useImageUpload(categoryId);
  const summary = summarize(items);
  useWarnBeforeLeaving(running);

  return (
    <div className="upload">
      <h1>Upload normal samples</h1>
      <p className="muted">
        The files become good <strong>TRAIN</strong> images of the category: normal samples for training.
      </p>
      <div className="toolbar">
        <CategoryPicker value={categoryId} onChange={selectCategory} />
        {categoryId && <Link to={`/categories/${categoryId}?split=TRAIN`}>The category’s TRAIN images</Link>}
      </div>
      <FileDropZone onFiles={add} />
      <div className="toolbar upload-actions">
        <button
          type="button"
          className="primary"
          disabled={!categoryId || running || summary.queued === 0}
          onClick={() => void start()}
        >
          {summary.queued === 0 ? 'Upload' : `Upload ${summary.queued} ${summary.queued === 1 ? 'file' : 'files'}`}
        </button>
        {running && (
          <button type="button" onClick={stop}>
            Stop
          </button>
        )}
        <button type="button" disabled={running || items.length === 0} onClick={clear}>
          Clear list
        </button>
        {!categoryId && <span className="muted">Choose a category first.</span>}
      </div>
      {items.length > 0 && (
        <p className="upload-summary" data-testid="upload-summary" aria-live="polite">
          {running && `Uploading: ${summary.inProgress} under way, ${summary.queued} waiting. `}
          {summaryLine(summary)}
        </p>
      )}
      <UploadFileList items={items} />
      <p className="muted upload-note">
        An image is only stored once the service has checked it (format, checksum, duplicates). Closing this tab mid-way
        leaves nothing half-stored: uploads that were never confirmed expire, and the service’s sweep removes them.
      </p>
    </div>
  );
}

/** The browser asks before closing or reloading the tab while files are being uploaded. */
function useWarnBeforeLeaving(active: boolean) {
  useEffect(() => {
    if (!active) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [active]);
}

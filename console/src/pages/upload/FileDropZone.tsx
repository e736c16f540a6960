import { useState, type ChangeEvent, type DragEvent } from 'react';
import type { ApiProblem } from '../../api/errors';
import { ProblemList } from '../../ui/ProblemList';
import { filesOfDrop, filesOfInput, type PickedFile } from './collect-files';
import { ACCEPT_IMAGE_FILES } from '../../api/image-types';

/** Not in React's input attributes, yet what every current browser knows for picking a folder. */
const FOLDER_PICKER = { webkitdirectory: '' };

/** Where files come from: a drop of files or folders, or the two pickers. */
export function FileDropZone({ onFiles }: { onFiles(files: PickedFile[]): void }) {
  const [dragging, setDragging] = useState(false);
  const [problem, setProblem] = useState<ApiProblem | null>(null);

  const drop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault();
    setDragging(false);
    setProblem(null);
    filesOfDrop(event.dataTransfer).then(onFiles, (error: unknown) =>
      setProblem({ code: 'UNREADABLE_FILE', message: error instanceof Error ? error.message : String(error) }),
    );
  };
  const pick = (event: ChangeEvent<HTMLInputElement>) => {
    if (event.target.files) onFiles(filesOfInput(event.target.files));
    // Picking the same files again must fire change again.
    event.target.value = '';
  };

  return (
    <div
      className={`upload-drop-zone${dragging ? ' dragging' : ''}`}
      data-testid="upload-drop-zone"
      onDragOver={(event) => {
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
        setDragging(true);
      }}
      onDragLeave={(event) => {
        if (!event.currentTarget.contains(event.relatedTarget as Node | null)) setDragging(false);
      }}
      onDrop={drop}
    >
      <p className="upload-drop-title">Drop image files or whole folders here</p>
      <p className="muted">PNG, JPEG, BMP or TIFF. Other files are listed as skipped and not sent.</p>
      <div className="upload-pickers">
        <label className="upload-pick">
          Choose files
          <input type="file" multiple accept={ACCEPT_IMAGE_FILES} onChange={pick} data-testid="upload-file-input" />
        </label>
        <label className="upload-pick">
          Choose a folder
          <input type="file" multiple {...FOLDER_PICKER} onChange={pick} data-testid="upload-folder-input" />
        </label>
      </div>
      <ProblemList problems={problem ? [problem] : []} />
    </div>
  );
}

import { useState, type DragEvent } from 'react';
import { ACCEPT_IMAGE_FILES } from '../../api/image-types';

/** A drop target for one image, with a file input for those who would rather pick it. */
export function ImageDropZone({ disabled, onFile }: { disabled: boolean; onFile(file: File): void }) {
  const [dragOver, setDragOver] = useState(false);

  const acceptDrag = (event: DragEvent) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = disabled ? 'none' : 'copy';
    setDragOver(!disabled);
  };

  return (
    <div
      className={['inspect-drop', dragOver && 'inspect-drop-over', disabled && 'inspect-drop-disabled']
        .filter(Boolean)
        .join(' ')}
      data-testid="inspect-drop-zone"
      onDragEnter={acceptDrag}
      onDragOver={acceptDrag}
      onDragLeave={() => setDragOver(false)}
      onDrop={(event) => {
        event.preventDefault();
        setDragOver(false);
        const file = event.dataTransfer.files[0];
        if (file && !disabled) onFile(file);
      }}
    >
      <p className="inspect-drop-title">Drop an image here</p>
      <label className="inspect-drop-pick">
        or choose a file
        <input
          type="file"
          accept={ACCEPT_IMAGE_FILES}
          disabled={disabled}
          data-testid="inspect-file-input"
          onChange={(event) => {
            const file = event.target.files?.[0];
            // Cleared so that choosing the same file again inspects it again.
            event.target.value = '';
            if (file) onFile(file);
          }}
        />
      </label>
      <p className="muted">PNG, JPEG, BMP or TIFF; one image at a time.</p>
    </div>
  );
}

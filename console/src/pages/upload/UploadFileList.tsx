import { bytes } from '../../ui/format';
import type { UploadItem } from './upload-files';

export function UploadFileList({ items }: { items: readonly UploadItem[] }) {
  if (items.length === 0) return null;
  return (
    <table className="upload-files">
      <thead>
        <tr>
          <th>File</th>
          <th className="number">Size</th>
          <th>Status</th>
        </tr>
      </thead>
      <tbody>
        {items.map((item) => (
          <tr key={item.id} data-testid="upload-row" data-status={item.status}>
            <td className="upload-path" title={item.path}>
              {item.path}
            </td>
            <td className="number">{bytes(item.file.size)}</td>
            <td className="upload-status">
              <UploadStatusCell item={item} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function UploadStatusCell({ item }: { item: UploadItem }) {
  switch (item.status) {
    case 'skipped':
      return <span className="muted">Skipped: not a PNG, JPEG, BMP or TIFF file</span>;
    case 'queued':
      return <span className="muted">Waiting</span>;
    case 'hashing':
      return <span>Computing its checksum…</span>;
    case 'uploading':
      return (
        <span className="upload-progress">
          <progress max={1} value={item.progress} aria-label={`Upload of ${item.path}`} />
          <span>{Math.round(item.progress * 100)}%</span>
        </span>
      );
    case 'uploaded':
      return <span>Uploaded, waiting to be checked</span>;
    case 'confirming':
      return <span>Being checked…</span>;
    case 'stored':
      return <span className="good">Stored</span>;
    case 'stopped':
      return <span className="muted">Stopped, not stored</span>;
    case 'refused':
    case 'failed':
      return (
        <span className="error">
          {item.status === 'refused' ? 'Refused' : 'Failed'}: <code className="upload-code">{item.problem?.code}</code>{' '}
          {item.problem?.message}
        </span>
      );
  }
}

export function UploadPage() {
  return <p>UploadPage: not built yet.</p>;
}

import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { CombinedError } from 'urql';
import { useMutation } from 'urql';
import { putToPresignedUrl, sha256Hex } from '../../api/presigned-put';
import { graphql } from '../../gql';
import type { ModelsRegisterMutation } from '../../gql/graphql';
import { ProblemList } from '../../ui/ProblemList';
import { bytes } from '../../ui/format';
import { modelNameFromFilename, parseThreshold } from './model-form';

const RequestModelUploadDocument = graphql(`
  mutation ModelsRequestUpload($input: RequestModelUploadInput!) {
    requestModelUpload(input: $input) {
      ...PresignedUploadTarget
    }
  }
`);

const RegisterModelDocument = graphql(`
  mutation ModelsRegister($input: RegisterModelInput!) {
    registerModel(input: $input) {
      id
      name
      version
      status
      failureCode
      failureReason
    }
  }
`);

type RegisteredModel = ModelsRegisterMutation['registerModel'];

type Progress =
  | { step: 'idle' }
  | { step: 'hashing' }
  | { step: 'uploading'; fraction: number }
  | { step: 'validating' }
  | { step: 'registered'; model: RegisteredModel }
  | { step: 'refused'; error: CombinedError | undefined }
  | { step: 'upload-failed'; message: string };

const BUSY_STEPS: ReadonlySet<Progress['step']> = new Set(['hashing', 'uploading', 'validating']);

/** ONNX file → requestModelUpload → PUT to the presigned URL → registerModel (validates before it answers). */
export function RegisterModelForm({ categoryId }: { categoryId: string }) {
  const [file, setFile] = useState<File | null>(null);
  const [name, setName] = useState('');
  const [thresholdText, setThresholdText] = useState('');
  const [progress, setProgress] = useState<Progress>({ step: 'idle' });
  const [, requestUpload] = useMutation(RequestModelUploadDocument);
  const [, registerModel] = useMutation(RegisterModelDocument);
  const uploadAbort = useRef<AbortController | null>(null);
  useEffect(() => () => uploadAbort.current?.abort(), []);

  const threshold = parseThreshold(thresholdText);
  const busy = BUSY_STEPS.has(progress.step);
  const ready = file !== null && name.trim() !== '' && threshold.valid && !busy;

  function chooseFile(chosen: File | null) {
    setFile(chosen);
    if (chosen && name.trim() === '') setName(modelNameFromFilename(chosen.name));
  }

  async function register(event: FormEvent) {
    event.preventDefault();
    if (!file || !ready || !threshold.valid) return;
    const abort = new AbortController();
    uploadAbort.current = abort;
    try {
      setProgress({ step: 'hashing' });
      const requested = await requestUpload({ input: { byteSize: file.size, sha256: await sha256Hex(file) } });
      const target = requested.data?.requestModelUpload;
      if (!target) return setProgress({ step: 'refused', error: requested.error });

      setProgress({ step: 'uploading', fraction: 0 });
      await putToPresignedUrl(target.url, target.headers, file, {
        onProgress: (fraction) => setProgress({ step: 'uploading', fraction }),
        signal: abort.signal,
      });

      setProgress({ step: 'validating' });
      const registered = await registerModel({
        input: { categoryId, name: name.trim(), uploadId: target.uploadId, threshold: threshold.value },
      });
      const model = registered.data?.registerModel;
      setProgress(model ? { step: 'registered', model } : { step: 'refused', error: registered.error });
    } catch (error) {
      if (abort.signal.aborted) return;
      setProgress({ step: 'upload-failed', message: error instanceof Error ? error.message : String(error) });
    }
  }

  return (
    <form className="card models-register" onSubmit={register} aria-label="Register a model">
      <h2>Register a model</h2>
      <p className="muted">
        An ONNX file that follows the model contract; it is validated (contract checks and one warm-up inference)
        before it is listed as READY.
      </p>
      <div className="models-register-fields">
        <label>
          ONNX file
          <input
            type="file"
            name="modelFile"
            accept=".onnx"
            onChange={(event) => chooseFile(event.target.files?.[0] ?? null)}
            disabled={busy}
          />
        </label>
        <label>
          Name
          <input name="name" value={name} onChange={(event) => setName(event.target.value)} disabled={busy} />
        </label>
        <label>
          Threshold (optional)
          <input
            name="threshold"
            type="number"
            step="any"
            placeholder="the model’s proposal"
            value={thresholdText}
            onChange={(event) => setThresholdText(event.target.value)}
            aria-invalid={!threshold.valid}
            disabled={busy}
          />
        </label>
        <button type="submit" className="primary" disabled={!ready}>
          Register
        </button>
      </div>
      {file ? <p className="muted">{`${file.name}, ${bytes(file.size)}`}</p> : null}
      <RegisterProgress progress={progress} />
    </form>
  );
}

function RegisterProgress({ progress }: { progress: Progress }) {
  switch (progress.step) {
    case 'idle':
      return null;
    case 'hashing':
      return <p className="muted">Computing the file’s SHA-256…</p>;
    case 'uploading':
      return (
        <div className="models-upload-progress">
          <span>Uploading… {Math.round(progress.fraction * 100)}%</span>
          <progress max={1} value={progress.fraction} aria-label="Upload progress" data-testid="model-upload-progress" />
        </div>
      );
    case 'validating':
      return <p className="muted">Uploaded; the service is validating the model…</p>;
    case 'refused':
      return <ProblemList error={progress.error} />;
    case 'upload-failed':
      return (
        <p className="error" role="alert">
          The upload failed: {progress.message}
        </p>
      );
    case 'registered':
      return <RegisteredResult model={progress.model} />;
  }
}

function RegisteredResult({ model }: { model: RegisteredModel }) {
  if (model.status === 'FAILED')
    return (
      <div className="models-result models-result-failed" role="alert" data-testid="register-result" data-status="FAILED">
        <strong>
          {model.name} v{model.version} failed validation:
        </strong>{' '}
        <code>{model.failureCode ?? 'FAILED'}</code> {model.failureReason}
      </div>
    );
  return (
    <div className="models-result" role="status" data-testid="register-result" data-status={model.status}>
      Registered {model.name} v{model.version}: <strong>{model.status}</strong>
      {model.status === 'READY' ? '. Activate it in the list below to serve it.' : '.'}
    </div>
  );
}

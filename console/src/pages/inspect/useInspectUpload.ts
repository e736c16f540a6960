import { useCallback, useEffect, useRef, useState } from 'react';
import { useMutation, type CombinedError } from 'urql';
import { problemsOf, type ApiProblem } from '../../api/errors';
import { putToPresignedUrl, sha256Hex } from '../../api/presigned-put';
import { graphql } from '../../gql';
import type { InspectUploadedImageMutation } from '../../gql/graphql';
import { imageContentType } from '../../api/image-types';

const InspectRequestUploadDocument = graphql(`
  mutation InspectRequestUpload($input: RequestInspectionUploadInput!) {
    requestInspectionUpload(input: $input) {
      ...PresignedUploadTarget
    }
  }
`);

const InspectUploadedImageDocument = graphql(`
  mutation InspectUploadedImage($input: InspectInput!) {
    inspect(input: $input) {
      id
      createdAt
      score
      normalizedScore
      threshold
      isAnomalous
      width
      height
      latencyMs
      overlayUrl
      anomalyMapUrl
      maskUrl
      anomalyMapDataUrl
      inputUrl
      model {
        id
        name
        version
      }
      regions {
        x
        y
        width
        height
        area
        meanScore
        maxScore
      }
    }
  }
`);

export type InspectionResultData = InspectUploadedImageMutation['inspect'];

export interface Timing {
  /** The inspect mutation alone, from the browser's side. */
  inspectRoundTripMs: number;
  /** Hashing, requesting the upload, the PUT and the inspect mutation. */
  totalMs: number;
}

export type InspectState =
  | { phase: 'idle' }
  | { phase: 'uploading'; file: File; fraction: number }
  | { phase: 'inspecting'; file: File }
  | { phase: 'done'; file: File; inspection: InspectionResultData; timing: Timing }
  | { phase: 'failed'; file: File; problems: ApiProblem[] };

function problemsOrUnknown(error: CombinedError | undefined): ApiProblem[] {
  const problems = problemsOf(error);
  return problems.length > 0 ? problems : [{ code: 'ERROR', message: 'the service gave no answer' }];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Inspects a file that is not in a dataset: requestInspectionUpload, PUT the bytes to the presigned
 * URL with the signed headers, then inspect with the upload id. A new file (or leaving the page)
 * abandons the run in progress.
 */
export function useInspectUpload(): [InspectState, (file: File, categoryId: string) => Promise<void>] {
  const [state, setState] = useState<InspectState>({ phase: 'idle' });
  const [, requestUpload] = useMutation(InspectRequestUploadDocument);
  const [, inspect] = useMutation(InspectUploadedImageDocument);
  const running = useRef<AbortController | null>(null);

  useEffect(() => () => running.current?.abort(), []);

  const inspectFile = useCallback(
    async (file: File, categoryId: string) => {
      running.current?.abort();
      const controller = new AbortController();
      running.current = controller;
      const { signal } = controller;
      const update = (next: InspectState) => {
        if (!signal.aborted) setState(next);
      };
      const startedAt = performance.now();
      update({ phase: 'uploading', file, fraction: 0 });

      let sha256: string;
      try {
        sha256 = await sha256Hex(file);
      } catch (error) {
        return update({ phase: 'failed', file, problems: [{ code: 'FILE_UNREADABLE', message: messageOf(error) }] });
      }
      const target = await requestUpload({
        input: {
          // A type the service does not take is still sent: it answers with its own code.
          contentType: imageContentType(file) ?? (file.type || 'application/octet-stream'),
          byteSize: file.size,
          sha256,
        },
      });
      if (!target.data) return update({ phase: 'failed', file, problems: problemsOrUnknown(target.error) });
      const { uploadId, url, headers } = target.data.requestInspectionUpload;

      try {
        await putToPresignedUrl(url, headers, file, {
          signal,
          onProgress: (fraction) => update({ phase: 'uploading', file, fraction }),
        });
      } catch (error) {
        return update({ phase: 'failed', file, problems: [{ code: 'UPLOAD_FAILED', message: messageOf(error) }] });
      }

      update({ phase: 'inspecting', file });
      const inspectStartedAt = performance.now();
      const result = await inspect({ input: { categoryId, uploadId } });
      const finishedAt = performance.now();
      if (!result.data) return update({ phase: 'failed', file, problems: problemsOrUnknown(result.error) });
      update({
        phase: 'done',
        file,
        inspection: result.data.inspect,
        timing: { inspectRoundTripMs: finishedAt - inspectStartedAt, totalMs: finishedAt - startedAt },
      });
    },
    [requestUpload, inspect],
  );

  return [state, inspectFile];
}

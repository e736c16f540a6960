import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { useMutation, type CombinedError } from 'urql';
import { problemsOf, type ApiProblem } from '../../api/errors';
import { graphql } from '../../gql';
import type { PickedFile } from './collect-files';
import { uploadItems, type UpdateItem, type UploadApi } from './run-upload';
import { imageContentType } from '../../api/image-types';
import { fileIdentity, fileIndexOfArgument, IN_PROGRESS, type UploadItem } from './upload-files';

const UploadRequestTargetsDocument = graphql(`
  mutation UploadRequestTargets($input: RequestImageUploadsInput!) {
    requestImageUploads(input: $input) {
      ...PresignedUploadTarget
    }
  }
`);

const UploadConfirmDocument = graphql(`
  mutation UploadConfirm($uploadIds: [ID!]!) {
    confirmImageUploads(uploadIds: $uploadIds) {
      results {
        uploadId
        code
        message
        image {
          id
          category {
            id
          }
        }
      }
    }
  }
`);

type Action =
  | { type: 'add'; files: PickedFile[] }
  | { type: 'update'; id: string; patch: Parameters<UpdateItem>[1] }
  | { type: 'clear' };

function reducer(items: UploadItem[], action: Action): UploadItem[] {
  switch (action.type) {
    case 'add': {
      const known = new Set(items.map((item) => item.id));
      const added: UploadItem[] = [];
      for (const { file, path } of action.files) {
        const id = fileIdentity(path, file);
        if (known.has(id)) continue;
        known.add(id);
        const contentType = imageContentType(file);
        added.push({
          id,
          file,
          path,
          contentType,
          status: contentType ? 'queued' : 'skipped',
          progress: 0,
          problem: null,
        });
      }
      return added.length === 0 ? items : [...items, ...added];
    }
    case 'update':
      return items.map((item) => (item.id === action.id ? { ...item, ...action.patch } : item));
    case 'clear':
      return items.filter((item) => IN_PROGRESS.has(item.status));
  }
}

function firstProblem(error: CombinedError | undefined): ApiProblem {
  return problemsOf(error)[0] ?? { code: 'ERROR', message: 'the service gave no answer' };
}

/**
 * The files picked for upload and their progress, and the upload of the queued ones as good
 * TRAIN images (normal samples) of a category.
 */
export function useImageUpload(categoryId: string | null) {
  const [items, dispatch] = useReducer(reducer, []);
  const [running, setRunning] = useState(false);
  const controller = useRef<AbortController | null>(null);
  const [, requestTargets] = useMutation(UploadRequestTargetsDocument);
  const [, confirm] = useMutation(UploadConfirmDocument);

  const api = useMemo<UploadApi | null>(
    () =>
      categoryId === null
        ? null
        : {
            requestTargets: async (files) => {
              const result = await requestTargets({ input: { categoryId, split: 'TRAIN', files } });
              if (result.data) return { ok: true, targets: result.data.requestImageUploads };
              const fileIndex = fileIndexOfArgument(result.error?.graphQLErrors[0]?.extensions?.argument);
              return { ok: false, problem: firstProblem(result.error), fileIndex };
            },
            confirm: async (uploadIds) => {
              const result = await confirm({ uploadIds });
              if (!result.data) return { ok: false, problem: firstProblem(result.error) };
              return {
                ok: true,
                results: result.data.confirmImageUploads.results.map((outcome) => ({
                  uploadId: outcome.uploadId,
                  stored: outcome.image !== null && outcome.image !== undefined,
                  problem: outcome.code ? { code: outcome.code, message: outcome.message ?? '' } : null,
                })),
              };
            },
          },
    [categoryId, requestTargets, confirm],
  );

  const add = useCallback((files: PickedFile[]) => dispatch({ type: 'add', files }), []);
  const clear = useCallback(() => dispatch({ type: 'clear' }), []);
  const stop = useCallback(() => controller.current?.abort(), []);

  const start = useCallback(async () => {
    const queued = items.filter((item) => item.status === 'queued');
    if (!api || running || queued.length === 0) return;
    const abort = new AbortController();
    controller.current = abort;
    setRunning(true);
    try {
      await uploadItems(queued, api, (id, patch) => dispatch({ type: 'update', id, patch }), abort.signal);
    } finally {
      controller.current = null;
      setRunning(false);
    }
  }, [items, api, running]);

  // Stop the PUTs if the page is left mid-way (what was not confirmed expires on the service).
  useEffect(() => () => controller.current?.abort(), []);

  return { items, running, add, clear, start, stop };
}

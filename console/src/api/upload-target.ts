import { graphql } from '../gql';

/**
 * What every presigned upload needs (requestImageUploads, requestInspectionUpload,
 * requestModelUpload): PUT the bytes to `url` with exactly these headers. Code generation puts
 * the fragment into each operation that spreads it: nothing imports this file.
 */
graphql(`
  fragment PresignedUploadTarget on UploadTarget {
    uploadId
    url
    headers {
      name
      value
    }
  }
`);

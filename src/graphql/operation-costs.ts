import type { ComplexityEstimator } from 'graphql-query-complexity';

/**
 * What the cost estimate (GRAPHQL_MAX_COMPLEXITY, 2000 by default) charges for mutations that do
 * more than a read, on top of the fields they select. type-graphql puts these on the fields'
 * extensions, where checkComplexity's fieldExtensionsEstimator finds them.
 */

/** One image through a model: decoding, pre-processing, a forward pass, the stored result. */
export const MODEL_RUN_COST = 20;

/** Starting a background job, or loading and warming up a model. */
export const JOB_COST = 100;

/** inspectBatch: every image of `input.imageIds` runs the model and returns its own selection. */
export const perInspectedImage: ComplexityEstimator = ({ args, childComplexity }) => {
  const input = args.input as { imageIds?: unknown } | undefined;
  const images = Array.isArray(input?.imageIds) ? Math.max(input.imageIds.length, 1) : 1;
  return images * (MODEL_RUN_COST + childComplexity);
};

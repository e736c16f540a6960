import type { CombinedError } from 'urql';

export interface ApiProblem {
  code: string;
  message: string;
}

/** The service's errors as (stable code, message) pairs; a failed request is NETWORK_ERROR. */
export function problemsOf(error: CombinedError | undefined | null): ApiProblem[] {
  if (!error) return [];
  if (error.networkError && error.graphQLErrors.length === 0)
    return [{ code: 'NETWORK_ERROR', message: error.networkError.message }];
  return error.graphQLErrors.map((graphQLError) => ({
    code: typeof graphQLError.extensions?.code === 'string' ? graphQLError.extensions.code : 'ERROR',
    message: graphQLError.message,
  }));
}

export function hasCode(error: CombinedError | undefined | null, code: string): boolean {
  return problemsOf(error).some((problem) => problem.code === code);
}

import type { CombinedError } from 'urql';
import { problemsOf, type ApiProblem } from '../api/errors';

/** The service's errors, each with its stable code, as the user should read them. */
export function ProblemList({ error, problems }: { error?: CombinedError | null; problems?: ApiProblem[] }) {
  const all = [...problemsOf(error), ...(problems ?? [])];
  if (all.length === 0) return null;
  return (
    <ul className="problems" role="alert">
      {all.map((problem, index) => (
        <li key={index}>
          <code className="code">{problem.code}</code> {problem.message}
        </li>
      ))}
    </ul>
  );
}

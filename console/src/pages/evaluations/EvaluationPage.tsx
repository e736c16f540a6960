import { useEffect } from 'react';
import { Link, useParams } from 'react-router-dom';
import { useQuery, useSubscription } from 'urql';
import { graphql } from '../../gql';
import { ProblemList } from '../../ui/ProblemList';
import { dateTime } from '../../ui/format';
import { EvaluationProgressCard } from './EvaluationProgressCard';
import { EvaluationReport } from './EvaluationReport';
import { EvaluationStatusBadge } from './EvaluationStatusBadge';
import { isInProgress } from './evaluation-status';
import './evaluations.css';

const EvaluationReportDocument = graphql(`
  query EvaluationReport($id: ID!) {
    evaluation(id: $id) {
      id
      status
      processed
      total
      error
      attempts
      createdAt
      startedAt
      finishedAt
      auproLimit
      imageAuroc
      pixelAuroc
      aupro
      imageF1Max
      imageF1Threshold
      pixelF1Max
      goodImageCount
      defectiveImageCount
      mapWidth
      mapHeight
      imageScoreRule
      accuracyGuardReference {
        id
        model {
          name
          version
        }
      }
      category {
        id
        name
        dataset {
          id
          name
        }
      }
      model {
        id
        name
        version
        threshold
        isActive
      }
      snapshot {
        id
        name
        imageCount
      }
      perDefect {
        defectType
        imageCount
        imageAuroc
        pixelAuroc
        aupro
      }
      rocCurve {
        x
        y
      }
      proCurve {
        x
        y
      }
    }
  }
`);

const EvaluationPageProgressDocument = graphql(`
  subscription EvaluationPageProgress($id: ID!) {
    evaluationProgress(id: $id) {
      id
      status
      processed
      total
      error
    }
  }
`);

/** One evaluation: live progress while it runs, then its report (or why it failed). */
export function EvaluationPage() {
  const { evaluationId = '' } = useParams();
  const [report, refetchReport] = useQuery({ query: EvaluationReportDocument, variables: { id: evaluationId } });
  const evaluation = report.data?.evaluation;
  const running = evaluation ? isInProgress(evaluation.status) : false;
  const [progress] = useSubscription({
    query: EvaluationPageProgressDocument,
    variables: { id: evaluationId },
    pause: !running,
  });
  const live = running ? progress.data?.evaluationProgress : undefined;

  // The subscription carries progress only; once it reports the end, the report is read again.
  useEffect(() => {
    if (live && !isInProgress(live.status)) refetchReport({ requestPolicy: 'network-only' });
  }, [live, refetchReport]);

  if (!evaluation)
    return (
      <section className="evaluations-page">
        <BackLink />
        {report.fetching ? <p className="muted">Loading the evaluation…</p> : null}
        {report.data && !evaluation ? <p className="error">There is no evaluation {evaluationId}.</p> : null}
        <ProblemList error={report.error} />
      </section>
    );

  const status = live?.status ?? evaluation.status;
  return (
    <section className="evaluations-page">
      <BackLink categoryId={evaluation.category.id} />
      <header className="evaluations-report-header">
        <h1>
          Evaluation of {evaluation.model.name} v{evaluation.model.version}
        </h1>
        <EvaluationStatusBadge status={status} />
      </header>
      <p className="muted">
        {evaluation.category.dataset.name} / {evaluation.category.name} · snapshot{' '}
        {evaluation.snapshot ? `${evaluation.snapshot.name} (${evaluation.snapshot.imageCount} images)` : 'deleted'} ·
        created {dateTime(evaluation.createdAt)}
        {evaluation.finishedAt ? ` · finished ${dateTime(evaluation.finishedAt)}` : ''}
        {evaluation.attempts > 1 ? ` · ${evaluation.attempts} attempts` : ''}
      </p>
      {evaluation.accuracyGuardReference ? (
        <p className="card" data-testid="accuracy-guard">
          The accuracy guard of this INT8 version: it becomes READY only if its metrics stay within the tolerance of{' '}
          <Link to={`/evaluations/${evaluation.accuracyGuardReference.id}`}>
            the evaluation of {evaluation.accuracyGuardReference.model.name} v
            {evaluation.accuracyGuardReference.model.version}
          </Link>{' '}
          on the same snapshot.
        </p>
      ) : null}
      <ProblemList error={report.error} />
      {isInProgress(status) ? (
        <EvaluationProgressCard
          evaluationId={evaluation.id}
          status={status}
          processed={live?.processed ?? evaluation.processed}
          total={live?.total ?? evaluation.total}
          error={progress.error}
        />
      ) : null}
      {status === 'FAILED' ? (
        <div className="card evaluations-failed" role="alert" data-testid="evaluation-error">
          <strong>The evaluation failed.</strong> {live?.error ?? evaluation.error ?? 'No reason was recorded.'}
        </div>
      ) : null}
      {status === 'CANCELLED' ? <p className="muted">The evaluation was cancelled.</p> : null}
      {evaluation.status === 'SUCCEEDED' ? <EvaluationReport evaluation={evaluation} /> : null}
    </section>
  );
}

function BackLink({ categoryId }: { categoryId?: string }) {
  return (
    <Link className="evaluations-back" to={categoryId ? `/evaluations?category=${categoryId}` : '/evaluations'}>
      ← Evaluations
    </Link>
  );
}

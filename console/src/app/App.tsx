import type { ReactNode } from 'react';
import { HashRouter, Navigate, Route, Routes } from 'react-router-dom';
import type { Role } from '../gql/graphql';
import { CategoryImagesPage } from '../pages/datasets/CategoryImagesPage';
import { DatasetsPage } from '../pages/datasets/DatasetsPage';
import { EvaluationPage } from '../pages/evaluations/EvaluationPage';
import { EvaluationsPage } from '../pages/evaluations/EvaluationsPage';
import { InspectPage } from '../pages/inspect/InspectPage';
import { LiveFeedPage } from '../pages/live/LiveFeedPage';
import { ModelsPage } from '../pages/models/ModelsPage';
import { SignInPage } from '../pages/SignInPage';
import { UploadPage } from '../pages/upload/UploadPage';
import { SessionProvider, useSession } from '../session/session';
import { Layout } from './Layout';

/** A page the signed-in role may not use is not offered (Layout) nor reachable by URL. */
function RequireRole({ role, children }: { role: Role; children: ReactNode }) {
  const session = useSession();
  if (!session.can(role))
    return (
      <p className="error" role="alert">
        This page needs the {role} role; this key is {session.viewer.role}.
      </p>
    );
  return <>{children}</>;
}

export function App() {
  return (
    <SessionProvider signIn={(props) => <SignInPage {...props} />}>
      {/* Hash routes: the service's own paths (/graphql, /inspections/…, /evaluations/…) stay its own. */}
      <HashRouter>
        <Routes>
          <Route element={<Layout />}>
            <Route index element={<Navigate to="/datasets" replace />} />
            <Route path="datasets" element={<DatasetsPage />} />
            <Route path="categories/:categoryId" element={<CategoryImagesPage />} />
            <Route
              path="upload"
              element={
                <RequireRole role="LABELER">
                  <UploadPage />
                </RequireRole>
              }
            />
            <Route
              path="inspect"
              element={
                <RequireRole role="LABELER">
                  <InspectPage />
                </RequireRole>
              }
            />
            <Route path="live" element={<LiveFeedPage />} />
            <Route path="evaluations" element={<EvaluationsPage />} />
            <Route path="evaluations/:evaluationId" element={<EvaluationPage />} />
            <Route path="models" element={<ModelsPage />} />
            <Route path="*" element={<Navigate to="/datasets" replace />} />
          </Route>
        </Routes>
      </HashRouter>
    </SessionProvider>
  );
}

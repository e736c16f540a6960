import { NavLink, Outlet } from 'react-router-dom';
import type { Role } from '../gql/graphql';
import { useSession } from '../session/session';

const PAGES: Array<{ path: string; label: string; role: Role }> = [
  { path: '/datasets', label: 'Datasets', role: 'VIEWER' },
  { path: '/upload', label: 'Upload', role: 'LABELER' },
  { path: '/inspect', label: 'Inspect', role: 'LABELER' },
  { path: '/live', label: 'Live feed', role: 'VIEWER' },
  { path: '/evaluations', label: 'Evaluations', role: 'VIEWER' },
  { path: '/models', label: 'Models', role: 'VIEWER' },
];

export function Layout() {
  const { viewer, can, signOut } = useSession();
  return (
    <div className="layout">
      <header className="top-bar">
        <span className="brand">Inspection console</span>
        <nav>
          {PAGES.filter((page) => can(page.role)).map((page) => (
            <NavLink key={page.path} to={page.path}>
              {page.label}
            </NavLink>
          ))}
        </nav>
        <span className="who">
          {viewer.name}{' '}
          <span className={`badge role-${viewer.role.toLowerCase()}`} data-testid="role">
            {viewer.role}
          </span>
        </span>
        <a href="/graphiql" target="_blank" rel="noreferrer">
          GraphiQL
        </a>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main className="page">
        <Outlet />
      </main>
    </div>
  );
}

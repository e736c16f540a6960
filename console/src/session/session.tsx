import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { Provider as UrqlProvider } from 'urql';
import { createApiClient, type ApiClient } from '../api/client';
import { problemsOf } from '../api/errors';
import { graphql } from '../gql';
import type { Role, ViewerQuery } from '../gql/graphql';
import { roleAllows } from './roles';
import { SocketStateProvider } from './socket-state';

const STORAGE_KEY = 'inspection-console.api-key';

const ViewerDocument = graphql(`
  query Viewer {
    viewer {
      apiKeyId
      name
      role
    }
  }
`);

export type Viewer = ViewerQuery['viewer'];

export interface Session {
  viewer: Viewer;
  can(required: Role): boolean;
  signOut(): void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in SessionProvider');
  return session;
}

type State =
  | { kind: 'signed-out'; problem?: string }
  | { kind: 'checking'; key: string }
  | { kind: 'signed-in'; key: string; api: ApiClient; viewer: Viewer };

/**
 * Holds the API key (in sessionStorage: gone when the tab closes) and the client made with it.
 * A key is only kept once `viewer` has answered with it; a key the service later refuses
 * (revoked) signs the console out.
 */
export function SessionProvider({
  signIn,
  children,
}: {
  signIn: (props: SignInProps) => ReactNode;
  children: ReactNode;
}) {
  const [state, setState] = useState<State>(() => {
    const key = sessionStorage.getItem(STORAGE_KEY);
    return key ? { kind: 'checking', key } : { kind: 'signed-out' };
  });

  const signOut = useCallback((problem?: string) => {
    sessionStorage.removeItem(STORAGE_KEY);
    setState((previous) => {
      if (previous.kind === 'signed-in') previous.api.dispose();
      return { kind: 'signed-out', problem };
    });
  }, []);

  useEffect(() => {
    if (state.kind !== 'checking') return;
    let cancelled = false;
    const api = createApiClient(state.key, () => signOut('The service refused this key (revoked or unknown).'));
    void api.client
      .query(ViewerDocument, {}, { requestPolicy: 'network-only' })
      .toPromise()
      .then((result) => {
        if (cancelled) return;
        if (result.data?.viewer) {
          sessionStorage.setItem(STORAGE_KEY, state.key);
          setState({ kind: 'signed-in', key: state.key, api, viewer: result.data.viewer });
        } else {
          api.dispose();
          const [problem] = problemsOf(result.error);
          signOut(problem ? `${problem.code}: ${problem.message}` : 'The service did not accept this key.');
        }
      });
    return () => {
      cancelled = true;
    };
  }, [state, signOut]);

  const session = useMemo<Session | null>(
    () =>
      state.kind === 'signed-in'
        ? { viewer: state.viewer, can: (required) => roleAllows(state.viewer.role, required), signOut: () => signOut() }
        : null,
    [state, signOut],
  );

  if (state.kind !== 'signed-in' || !session)
    return signIn({
      checking: state.kind === 'checking',
      problem: state.kind === 'signed-out' ? state.problem : undefined,
      onSubmit: (key) => setState({ kind: 'checking', key: key.trim() }),
    });
  return (
    <SessionContext.Provider value={session}>
      <SocketStateProvider socket={state.api.socket}>
        <UrqlProvider value={state.api.client}>{children}</UrqlProvider>
      </SocketStateProvider>
    </SessionContext.Provider>
  );
}

export interface SignInProps {
  checking: boolean;
  problem?: string;
  onSubmit(key: string): void;
}

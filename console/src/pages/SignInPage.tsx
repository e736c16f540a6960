import { useState } from 'react';
import type { SignInProps } from '../session/session';

export function SignInPage({ checking, problem, onSubmit }: SignInProps) {
  const [key, setKey] = useState('');
  return (
    <main className="sign-in">
      <form
        className="card"
        onSubmit={(event) => {
          event.preventDefault();
          if (key.trim()) onSubmit(key);
        }}
      >
        <h1>Inspection console</h1>
        <p className="muted">
          Sign in with an API key. <code>npm start</code> prints the admin key on its first start; an admin creates
          others with <code>createApiKey</code>. The key stays in this tab only.
        </p>
        <label>
          API key
          <input
            name="apiKey"
            type="password"
            autoComplete="off"
            placeholder="isk_…"
            value={key}
            onChange={(event) => setKey(event.target.value)}
            autoFocus
          />
        </label>
        {problem && (
          <p className="error" role="alert">
            {problem}
          </p>
        )}
        <button type="submit" className="primary" disabled={checking || !key.trim()}>
          {checking ? 'Checking…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

// A GraphQL client as a frontend would use one: fetch over HTTP, graphql-ws over websockets.
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface GraphQLErrorShape {
  message: string;
  path?: Array<string | number>;
  extensions?: { code?: string; [key: string]: unknown };
}

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: GraphQLErrorShape[];
}

export class GraphQLTestClient {
  constructor(
    readonly url: string,
    private readonly apiKey?: string,
  ) {}

  withKey(apiKey: string | undefined): GraphQLTestClient {
    return new GraphQLTestClient(this.url, apiKey);
  }

  async request<T>(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse<T>> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse<T>;
  }

  /** The data of a request that must succeed; fails the test with the errors otherwise. */
  async data<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const result = await this.request<T>(query, variables);
    if (result.errors?.length || !result.data) throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
    return result.data;
  }

  /** The error code of a request that must fail. */
  async errorCode(query: string, variables?: Record<string, unknown>): Promise<string | undefined> {
    const result = await this.request(query, variables);
    if (!result.errors?.length) throw new Error(`expected an error, got ${JSON.stringify(result.data)}`);
    return result.errors[0]?.extensions?.code;
  }

  websocket(): Client {
    return createClient({
      url: this.url.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {},
      retryAttempts: 0,
      lazy: true,
    });
  }
}

/**
 * Collects the results of one subscription. `next(n)` waits until n results arrived.
 */
export class SubscriptionRecorder<T> {
  readonly results: GraphQLResponse<T>[] = [];
  private waiters: Array<() => void> = [];
  private completed = false;
  error: unknown;
  readonly dispose: () => void;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    this.dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          this.results.push(value as GraphQLResponse<T>);
          this.notify();
        },
        error: (error) => {
          this.error = error;
          this.completed = true;
          this.notify();
        },
        complete: () => {
          this.completed = true;
          this.notify();
        },
      },
    );
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  get done(): boolean {
    return this.completed;
  }

  async waitFor(
    predicate: (results: GraphQLResponse<T>[]) => boolean,
    timeoutMs = 20_000,
  ): Promise<GraphQLResponse<T>[]> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.results)) {
      if (this.completed)
        throw new Error(
          `subscription ended before the expected results: ${JSON.stringify(this.results)} ${String(this.error)}`,
        );
      const remaining = deadline - Date.now();
      if (remaining <= 0)
        throw new Error(`timed out waiting for subscription results; got ${JSON.stringify(this.results)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.results;
  }

  async waitForCompletion(timeoutMs = 20_000): Promise<void> {
    await this.waitFor(() => this.completed, timeoutMs).catch((error: unknown) => {
      if (!this.completed) throw error;
    });
  }
}

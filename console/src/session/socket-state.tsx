import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import type { Client as WebSocketClient } from 'graphql-ws';

/** The subscriptions' websocket as a page can show it ('idle': no subscription open). */
export type SocketState = 'idle' | 'connecting' | 'connected' | 'reconnecting';

const SocketStateContext = createContext<SocketState>('idle');

export function useSocketState(): SocketState {
  return useContext(SocketStateContext);
}

/** Follows graphql-ws's own events; after a lost connection it reconnects by itself (api/client.ts). */
export function SocketStateProvider({ socket, children }: { socket: WebSocketClient; children: ReactNode }) {
  const [state, setState] = useState<SocketState>('idle');
  useEffect(() => {
    const stops = [
      socket.on('connecting', (isRetry) => setState(isRetry ? 'reconnecting' : 'connecting')),
      socket.on('connected', () => setState('connected')),
      // 1000: the client closed it (lazy: no subscription left); anything else was lost and is retried.
      socket.on('closed', (event) =>
        setState((event as CloseEvent | undefined)?.code === 1000 ? 'idle' : 'reconnecting'),
      ),
    ];
    return () => stops.forEach((stop) => stop());
  }, [socket]);
  return <SocketStateContext.Provider value={state}>{children}</SocketStateContext.Provider>;
}

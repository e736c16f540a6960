import { createContext, useContext, useEffect, useState, type ReactNode } from 'react';
import type { Client as WebSocketClient } from 'graphql-ws';

/** The subscriptions' websocket as a page can show it ('idle': no subscription open yet). */
export type SocketState = 'idle' | 'connecting' | 'connected' | 'reconnecting';

const SocketStateContext = createContext<SocketState>('idle');

export function useSocketState(): SocketState {
  return useContext(SocketStateContext);
}

/** Follows graphql-ws's own events; after a lost connection it reconnects by itself (api/client.ts). */
export function SocketStateProvider({ socket, children }: { socket: WebSocketClient; children: ReactNode }) {
  const [state, setState] = useState<SocketState>('idle');
  useEffect(() => {
    let wasConnected = false;
    const stops = [
      socket.on('connecting', () => setState(wasConnected ? 'reconnecting' : 'connecting')),
      socket.on('connected', () => {
        wasConnected = true;
        setState('connected');
      }),
      // 1000: the client closed it (lazy: no subscription left); anything else was lost.
      socket.on('closed', (event) => {
        const normal = (event as CloseEvent | undefined)?.code === 1000;
        setState(wasConnected && !normal ? 'reconnecting' : 'idle');
      }),
    ];
    return () => stops.forEach((stop) => stop());
  }, [socket]);
  return <SocketStateContext.Provider value={state}>{children}</SocketStateContext.Provider>;
}

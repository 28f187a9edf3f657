import type { OutgoingResponse, Route } from '../../src/core/http/server.js';

/**
 * Every route that may write (any method but GET) answers only once what it committed is on disk: the
 * store's group commit (store/wal-flush.ts), shared with every write committed meanwhile. A refusal (4xx)
 * changed nothing and is answered at once. GET routes that hand out what others wrote (the nodes' delta
 * long poll) wait for it themselves.
 */
export function answeredWhenDurable(routes: Route[], flushed: () => Promise<void>): Route[] {
  return routes.map((route) => {
    if (route.method === 'GET') return route;
    const { handler } = route;
    return {
      ...route,
      handler: async (request): Promise<OutgoingResponse> => {
        const response = await handler(request);
        if (response.status < 400) await flushed();
        return response;
      },
    };
  });
}

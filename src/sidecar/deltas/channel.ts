import { parseDeltaBatch, type DeltaBatch } from '../../core/protocol/deltas.js';
import { CentreClient } from '../centre/client.js';

/**
 * How a node receives live changes (issue 18), behind one small interface so the transport can change without
 * the follower noticing: today the embedded long poll over the HTTP the node already speaks to the centre; a
 * NATS JetStream consumer (ordered, durable, replayable) is the way to many nodes and more than one centre
 * (docs/architecture.md). Whatever the transport, the node names the last sequence it applied and gets what
 * follows it, so order and gaps stay the follower's to check, not the transport's to promise.
 */
export interface DeltaChannel {
  /**
   * The deltas after `after`, or an empty batch when none came within the transport's wait. `wantSnapshot`:
   * the node cannot apply what follows (a delta names something only a snapshot brings): the centre sends one.
   */
  next(after: number, signal: AbortSignal, wantSnapshot: boolean): Promise<DeltaBatch>;
  close(): void;
}

/** A refusal by the centre (401 node_unauthenticated, 404 unknown_node…): retried, but worth saying. */
export class ChannelRefused extends Error {}

/**
 * `GET /api/nodes/deltas` held open by the centre up to `waitMs` (sync/deltas/routes.ts), on a connection of its
 * own: the money rounds' one kept connection must never queue behind a held ask.
 */
export class LongPollChannel implements DeltaChannel {
  private readonly client: CentreClient;

  constructor(
    bases: readonly string[],
    private readonly node: string,
    private readonly waitMs: number,
    timeoutMs: number,
    authorization: (() => string) | null,
  ) {
    this.client = new CentreClient(bases, waitMs + timeoutMs, authorization);
  }

  async next(after: number, signal: AbortSignal, wantSnapshot: boolean): Promise<DeltaBatch> {
    const query = new URLSearchParams({ node: this.node, after: String(after), wait_ms: String(this.waitMs) });
    if (wantSnapshot) query.set('snapshot', '1');
    const reply = await this.client.get(`/api/nodes/deltas?${query.toString()}`, signal);
    if (reply.status !== 200) throw new ChannelRefused(`the control plane answered ${reply.status}: ${reply.text.slice(0, 200)}`);
    let body: unknown;
    try {
      body = JSON.parse(reply.text);
    } catch {
      throw new ChannelRefused('the control plane answered something that is not JSON');
    }
    const batch = parseDeltaBatch(body);
    if (batch === null) throw new ChannelRefused('the control plane answered a malformed delta batch');
    return batch;
  }

  close(): void {
    this.client.close();
  }
}

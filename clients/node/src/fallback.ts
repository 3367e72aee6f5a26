// The fallback: what SQS did not take in an outage (throttling, 5xx, connection loss) is published directly with
// PutMetricData, unless the fallback is off or the producer is aborting at exit. Never for a wrong setting (held.ts).
import { sampleCount } from "./aggregation.js";
import { packRequests, publish } from "./cloudwatch.js";
import type { Counters } from "./counters.js";
import type { SenderClients, SenderEvents } from "./sender-types.js";
import type { Datum } from "./wire.js";

const FALLBACK_POLICY = { attempts: 3, baseDelayMs: 200, maxDelayMs: 1000 };

export class Fallback {
  constructor(
    private readonly enabled: boolean,
    private readonly clients: Pick<SenderClients, "cloudwatch">,
    private readonly counters: Counters,
    private readonly events: Pick<SenderEvents, "drop">,
  ) {}

  /** Publish directly with PutMetricData; returns how many samples it accounted for (published or dropped). */
  async publish(datums: Datum[], signal: AbortSignal): Promise<number> {
    const samples = datums.reduce((sum, d) => sum + sampleCount(d), 0);
    if (!this.enabled || signal.aborted) {
      this.events.drop(samples, this.enabled ? "aborted at exit" : "SQS unavailable and the fallback is off");
      return samples;
    }
    try {
      const outcome = await publish(this.clients.cloudwatch(), packRequests(datums), FALLBACK_POLICY, signal);
      this.counters.putMetricDataCalls += outcome.calls;
      this.counters.fallbackPublished += outcome.published;
      if (outcome.lost > 0) this.events.drop(outcome.lost, `SQS and CloudWatch unavailable (${outcome.lastError})`);
    } catch (error) {
      this.events.drop(samples, `SQS and CloudWatch unavailable: ${error}`);
    }
    return samples;
  }
}

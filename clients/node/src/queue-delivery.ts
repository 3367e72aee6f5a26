// To the queue (or a sharded deployment's queues): each series routed to its shard's queue, encoded into messages,
// sent with SendMessageBatch and counted; when SQS refuses a queue for a wrong setting, the sentence that says so
// (naming the region the client resolved).
import { debuglog } from "node:util";
import { countSent, type Counters } from "./counters.js";
import { encodeMessages } from "./message-encoding.js";
import { regionOf } from "./clients.js";
import { configurationProblem, queueRefusal } from "./retry.js";
import type { SenderClients } from "./sender-types.js";
import type { ShardRouter } from "./shards.js";
import { sendMessages, type OutgoingMessage, type SendOutcome } from "./sqs.js";
import type { Datum } from "./wire.js";

const debug = debuglog("metricbatch");

export interface QueueOutcome {
  /** The messages no queue accepted. */
  failed: OutgoingMessage[];
  /** Why a queue refused its messages for a wrong setting (the first such queue), else undefined. */
  refused?: string;
}

export class QueueDelivery {
  constructor(
    private readonly router: ShardRouter,
    private readonly settings: { maxMessageBytes: number; sendAttempts: number },
    private readonly clients: Pick<SenderClients, "sqs">,
    private readonly counters: Counters,
  ) {}

  /** The messages of each queue, in queue order. */
  encode(datums: Iterable<Datum>): Promise<OutgoingMessage[][]> {
    const routed = this.router.route(datums);
    return Promise.all(routed.map((queued) => encodeMessages(queued, this.settings.maxMessageBytes)));
  }

  /** Send each queue its messages (from encode()); `signal` is read at each request (a reset producer has a new one). */
  async send(perQueue: OutgoingMessage[][], signal: () => AbortSignal): Promise<QueueOutcome> {
    const queues = this.router.queues;
    const failed: OutgoingMessage[] = [];
    let refused: string | undefined;
    for (const [index, messages] of perQueue.entries()) {
      if (messages.length === 0) continue;
      const outcome = await this.sendToSqs(messages, queues[index]!, signal);
      failed.push(...outcome.failed);
      if (outcome.failed.length > 0 && outcome.configuration !== undefined && refused === undefined) {
        refused = queueRefusal(queues[index]!, await regionOf(this.clients.sqs()), outcome.configuration);
      }
    }
    return { failed, refused };
  }

  /** Send to SQS; returns the messages it did not accept, and the wrong setting that refused them if one did. */
  private async sendToSqs(
    messages: OutgoingMessage[],
    queueUrl: string,
    signal: () => AbortSignal,
  ): Promise<Pick<SendOutcome, "failed" | "configuration">> {
    const { counters } = this;
    try {
      const policy = { attempts: this.settings.sendAttempts, baseDelayMs: 50, maxDelayMs: 2000 };
      const outcome = await sendMessages(this.clients.sqs(), queueUrl, messages, policy, signal());
      countSent(counters, outcome);
      if (outcome.failed.length > 0)
        debug("SQS did not accept %d message(s): %s", outcome.failed.length, outcome.lastError);
      return outcome;
    } catch (error) {
      debug("cannot send to SQS: %s", error);
      counters.sendErrors += 1;
      return { failed: messages, configuration: configurationProblem(error) };
    }
  }
}

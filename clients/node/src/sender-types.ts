// What the sender is given: its settings (resolved by the producer's configuration), the clients it calls and the
// events it reports back to the producer.
import type { CloudWatchSender } from "./cloudwatch.js";
import type { SqsSender } from "./sqs.js";

export interface SenderSettings {
  queueUrl: string;
  /** A sharded deployment's queues in shard order: each series goes to one of them (shards.ts). */
  queueUrls?: readonly string[];
  maxMessageBytes: number;
  sendAttempts: number;
  fallback: boolean;
  /** While SQS refuses the queue for a wrong setting, how often the held metrics are offered again (ms). */
  queueRetryIntervalMs: number;
  /** Distinct values held at most for a wrong setting (the producer's maxBuffered). */
  maxHeldValues: number;
}

export interface SenderClients {
  sqs(): SqsSender;
  cloudwatch(): CloudWatchSender;
  /** Why SQS cannot be reached at all ("" when it can): the producer then turns to mode off. */
  unreachable(): Promise<string>;
}

export interface SenderEvents {
  drop(count: number, why: string): void;
  /** A setting mode sqs needs is missing: the producer turns off; the sender counts what it had as discarded. */
  turnOff(reason: string): void;
}

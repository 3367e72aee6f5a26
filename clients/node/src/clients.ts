// The AWS SDK clients the producer makes itself (when none is given): the SDK's standard settings, plus the region
// from AWS_DEFAULT_REGION when AWS_REGION is unset. The v3 SDK reads only AWS_REGION (and the profile); the Python
// producer, the AWS CLI and Lambda read both (metricbatch/aws/session.py), so one environment serves both producers.
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { SQSClient } from "@aws-sdk/client-sqs";
import type { CloudWatchSender } from "./cloudwatch.js";
import { DISCARDED } from "./modes.js";
import { configurationProblem } from "./retry.js";
import type { SqsSender } from "./sqs.js";

interface Timeouts {
  connectionTimeout: number;
  requestTimeout: number;
}

function options(timeouts: Timeouts): { maxAttempts: number; requestHandler: Timeouts; region?: string } {
  // maxAttempts 1: the producer's own jittered retries decide, and a dead endpoint fails over to the fallback fast.
  const region = process.env.AWS_REGION ? undefined : process.env.AWS_DEFAULT_REGION || undefined;
  return { maxAttempts: 1, requestHandler: timeouts, ...(region === undefined ? {} : { region }) };
}

export function makeSqsClient(timeouts: Timeouts): SQSClient {
  return new SQSClient(options(timeouts));
}

export function makeCloudWatchClient(timeouts: Timeouts): CloudWatchClient {
  return new CloudWatchClient(options(timeouts));
}

/**
 * Why a client made here cannot reach AWS at all ("" when it can): no region anywhere. The SDK only finds out at the
 * first request (a plain Error "Region is missing"); asking its region provider says so before any metric is sent.
 */
export async function unreachable(client: SQSClient): Promise<string> {
  try {
    await client.config.region();
    return "";
  } catch (error) {
    return configurationProblem(error)?.problem ?? ""; // anything else: the first request reports it
  }
}

/** The region an AWS SDK v3 client resolved ("" when it has none, or is no SDK client: a fake in tests). */
export async function regionOf(client: unknown): Promise<string> {
  const region = (client as { config?: { region?: unknown } } | undefined)?.config?.region;
  try {
    const resolved: unknown = typeof region === "function" ? await (region as () => unknown)() : region;
    return typeof resolved === "string" ? resolved : "";
  } catch {
    return ""; // no region: said before any request (unreachable above)
  }
}

// Timeouts of the clients a producer makes: a dead endpoint fails over to the fallback within seconds.
const PRODUCER_CLIENT_TIMEOUTS = { connectionTimeout: 2000, requestTimeout: 10_000 };

/** A producer's clients: those it was given, else made at first use; made SQS clients are checked for a region. */
export class ProducerClients {
  private reachable: Promise<string> | undefined;

  constructor(
    private sqsClient: SqsSender | undefined,
    private cloudwatchClient: CloudWatchSender | undefined,
  ) {}

  sqs(): SqsSender {
    if (this.sqsClient === undefined) {
      const client = makeSqsClient(PRODUCER_CLIENT_TIMEOUTS);
      this.reachable = unreachable(client).then((why) => why && `mode sqs cannot reach AWS, ${why}; ${DISCARDED}`);
      this.sqsClient = client;
    }
    return this.sqsClient;
  }

  cloudwatch(): CloudWatchSender {
    this.cloudwatchClient ??= makeCloudWatchClient(PRODUCER_CLIENT_TIMEOUTS);
    return this.cloudwatchClient;
  }

  /** Why SQS cannot be reached at all ("" when it can, or when the client was given). */
  unreachable(): Promise<string> {
    this.sqs();
    return this.reachable ?? Promise.resolve("");
  }
}

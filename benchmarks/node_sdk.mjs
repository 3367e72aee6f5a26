// instrumentClient's cost per SDK v3 call (benchmarks/sdk.py runs this): two SQSClients of one endpoint, one
// instrumented, in shuffled alternating rounds; the endpoint is a request handler answering at once (the SDK's
// middleware stack, serialization, signing and parsing are real; no socket), so the difference is the middleware's
// and the producer's. The instrumented client's metrics go to a producer whose queue accepts at once.
// Prints one JSON line: median per-call µs of each, the median per-round difference and ratio, metrics recorded.
import { createRequire } from "node:module";
import { Readable } from "node:stream";

const entry = process.env.METRICBATCH_NODE_ENTRY;
const { MetricProducer, instrumentClient } = await import(entry);
const require = createRequire(
  new URL("../clients/node/package.json", import.meta.url),
);
const { SQSClient, GetQueueUrlCommand } = require("@aws-sdk/client-sqs");

const rounds = Number(process.argv[2] ?? 21);
const calls = Number(process.argv[3] ?? 1000);
const body = Buffer.from(
  JSON.stringify({ QueueUrl: "http://127.0.0.1/123456789012/bench" }),
);
const handler = {
  async handle() {
    return {
      response: {
        statusCode: 200,
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "content-length": String(body.length),
        },
        body: Readable.from([body]),
      },
    };
  },
};
const options = {
  region: "us-east-1",
  credentials: { accessKeyId: "a", secretAccessKey: "b" },
  requestHandler: handler,
};
let accepted = 0;
const queue = {
  async send(command) {
    const entries = command.input.Entries;
    accepted += entries.length;
    return {
      Successful: entries.map((e) => ({ Id: e.Id, MessageId: e.Id })),
      Failed: [],
    };
  },
};
const producer = new MetricProducer({
  mode: "sqs",
  queueUrl: "http://127.0.0.1/123456789012/q",
  namespace: "Bench/NodeSdk",
  sqsClient: queue,
  handleSignals: false,
});
const plain = new SQSClient(options);
const hooked = new SQSClient(options);
instrumentClient(hooked, { producer, namespace: "Bench/NodeSdk" });

async function round(client, n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const out = await client.send(
      new GetQueueUrlCommand({ QueueName: "bench" }),
    );
    if (!out.QueueUrl)
      throw new Error("no QueueUrl: the call did not do what is measured");
  }
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

await round(plain, 200);
await round(hooked, 200);
const before = producer.stats().accepted;
const perRound = [];
for (let r = 0; r < rounds; r++) {
  const order = Math.random() < 0.5 ? ["plain", "hooked"] : ["hooked", "plain"];
  const times = {};
  for (const label of order)
    times[label] = await round(label === "plain" ? plain : hooked, calls);
  perRound.push(times);
}
const recorded = producer.stats().accepted - before;
await producer.flush(30000);
await producer.close();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(
  JSON.stringify({
    rounds,
    calls_per_round: calls,
    plain_us_per_call: median(perRound.map((t) => t.plain)),
    instrumented_us_per_call: median(perRound.map((t) => t.hooked)),
    overhead_us_per_call: median(perRound.map((t) => t.hooked - t.plain)),
    ratio: median(perRound.map((t) => t.hooked / t.plain)),
    metrics_recorded: recorded,
    metrics_accepted_by_queue: accepted,
  }),
);

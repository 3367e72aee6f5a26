// instrumentClient's cost per SDK v3 call (benchmarks/sdk.py runs this): two SQSClients of one endpoint, one
// instrumented, in shuffled alternating rounds; the endpoint is a request handler answering at once (the SDK's
// middleware stack, serialization, signing and parsing are real; no socket), so the difference is the middleware's
// and the producer's. The instrumented client's metrics go to a producer whose queue accepts at once.
// Also, in the same shuffled rounds: a client with an empty middleware (what the SDK itself charges for one more
// middleware: without `cacheMiddleware` it resolves the whole stack on every send), and an instrumented and a plain
// client with `cacheMiddleware: true` (the stack resolved once per command).
// Prints one JSON line: median per-call µs of each, the median per-round differences and ratio, metrics recorded.
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
const cached = { ...options, cacheMiddleware: true };
const clients = {
  plain: new SQSClient(options),
  hooked: new SQSClient(options),
  empty: new SQSClient(options),
  cachedPlain: new SQSClient(cached),
  cachedHooked: new SQSClient(cached),
};
instrumentClient(clients.hooked, { producer, namespace: "Bench/NodeSdk" });
instrumentClient(clients.cachedHooked, {
  producer,
  namespace: "Bench/NodeSdk",
});
clients.empty.middlewareStack.add(
  (next) => async (args) => {
    const started = performance.now();
    const result = await next(args);
    if (performance.now() < started) throw new Error("clock went back");
    return result;
  },
  { step: "initialize", name: "benchEmpty", priority: "high" },
);

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

for (const client of Object.values(clients)) await round(client, 200);
const before = producer.stats().accepted;
const perRound = [];
for (let r = 0; r < rounds; r++) {
  const order = Object.keys(clients).sort(() => Math.random() - 0.5);
  const times = {};
  for (const label of order) {
    times[label] = await round(clients[label], calls);
    // The calls resolve through microtasks only (no I/O): let timers run, as a service's event loop does, so the
    // producer's rounds ship what the calls recorded (untimed here, as for any other metric).
    await new Promise((resolve) => setImmediate(resolve));
  }
  perRound.push(times);
}
await producer.flush(30000);
const recorded = producer.stats().accepted - before;
await producer.close();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const differences = (a, b) => median(perRound.map((t) => t[a] - t[b]));
console.log(
  JSON.stringify({
    rounds,
    calls_per_round: calls,
    plain_us_per_call: median(perRound.map((t) => t.plain)),
    instrumented_us_per_call: median(perRound.map((t) => t.hooked)),
    overhead_us_per_call: differences("hooked", "plain"),
    ratio: median(perRound.map((t) => t.hooked / t.plain)),
    empty_middleware_us_per_call: differences("empty", "plain"),
    cached_plain_us_per_call: median(perRound.map((t) => t.cachedPlain)),
    cached_overhead_us_per_call: differences("cachedHooked", "cachedPlain"),
    metrics_recorded: recorded,
    metrics_accepted_by_queue: accepted,
  }),
);

// Shard routing, the same as the Python producer's (metricbatch/shards.py): FNV-1a (32 bit) of the series identity
// written as compact JSON [namespace, name, [[key, value], ...sorted by key], unit, resolution], modulo the number
// of shard queues. tests/vectors/shards.json holds cases both producers must route alike.
import type { DimensionPairs } from "./validation.js";
import type { Datum } from "./wire.js";

/** A sharded deployment's queues, comma-separated in shard order (the stack's QueueUrls output). */
export const QUEUE_URLS_VARIABLE = "METRICBATCH_QUEUE_URLS";
/** Seconds between sender rounds (the stack's ProducerRoundSeconds output when sharded). */
export const ROUND_SECONDS_VARIABLE = "METRICBATCH_ROUND_SECONDS";

export interface SeriesIdentity {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly resolution: number;
  readonly dimensions: DimensionPairs;
}

/** The routing identity of a series; dimensions in key order whatever order they came in. */
export function seriesIdentity(series: SeriesIdentity): string {
  const pairs: [string, string][] = series.dimensions.map(([k, v]) => [k, v]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return JSON.stringify([series.namespace, series.name, pairs, series.unit, Math.trunc(series.resolution)]);
}

/** FNV-1a, 32 bit, of the UTF-8 bytes of a string. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The shard (0..shards-1) of a series identity; always 0 with one shard. */
export function shardOf(identity: string, shards: number): number {
  return shards <= 1 ? 0 : fnv1a32(identity) % shards;
}

/** Queue URLs from a comma-separated list (empty entries ignored). */
export function urlList(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}

// Series whose shard is remembered at most; past that the cache starts over (metricbatch/producer/destinations.py).
const MAX_CACHED_SHARDS = 100_000;

/** Routes each series to its shard's queue (all to the one queue when there is one), remembering each series' shard. */
export class ShardRouter {
  /** Shard of each series (by its canonical head). */
  private readonly shards = new Map<string, number>();

  constructor(readonly queues: readonly string[]) {}

  /** The datums of each queue, in queue order. */
  route(datums: Iterable<Datum>): Datum[][] {
    const routed: Datum[][] = this.queues.map(() => []);
    for (const datum of datums) routed[this.shard(datum, this.queues.length)]!.push(datum);
    return routed;
  }

  private shard(datum: Datum, shards: number): number {
    if (shards <= 1) return 0;
    let index = this.shards.get(datum.series.head);
    if (index === undefined) {
      if (this.shards.size >= MAX_CACHED_SHARDS) this.shards.clear();
      index = shardOf(seriesIdentity(datum.series), shards);
      this.shards.set(datum.series.head, index);
    }
    return index;
  }
}

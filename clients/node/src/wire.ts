// Wire format v1 (README "Wire format v1", metricbatch/wire.py): one SQS message body holding many metrics.
//   {"v":1,"metrics":[{"namespace":"...","name":"...","unit":"Milliseconds","dimensions":{"K":"V"},
//                      "resolution":1,"timestamp":1795694400,"values":[10,20],"counts":[3,1]}, ...]}
import type { DimensionPairs } from "./validation.js";

export const WIRE_VERSION = 1;
export const ENVELOPE_START = '{"v":1,"metrics":[';
export const ENVELOPE_END = "]}";
export const ENVELOPE_BYTES = ENVELOPE_START.length + ENVELOPE_END.length;

/** A validated series: everything about a metric except its value and time. */
export interface Series {
  readonly namespace: string;
  readonly name: string;
  readonly unit: string;
  readonly resolution: 1 | 60;
  readonly dimensions: DimensionPairs;
  /** The constant start of the series' wire objects (no closing brace); ASCII, so length = bytes. */
  readonly head: string;
  /** Roll-ups: the series each sample is also recorded under (absent without roll-ups). */
  readonly fanout?: readonly Series[];
}

/** One wire metric after merging: a series, its bucket start and a value histogram of at most 150 values. */
export interface Datum {
  readonly series: Series;
  readonly timestamp: number;
  readonly values: number[];
  readonly counts: number[];
}

export function seriesHead(
  namespace: string,
  name: string,
  unit: string,
  resolution: number,
  dimensions: DimensionPairs,
): string {
  let head = `{"namespace":${JSON.stringify(namespace)},"name":${JSON.stringify(name)}`;
  if (unit !== "None") head += `,"unit":${JSON.stringify(unit)}`;
  if (dimensions.length > 0) head += `,"dimensions":${JSON.stringify(Object.fromEntries(dimensions))}`;
  if (resolution !== 60) head += `,"resolution":${resolution}`;
  return head;
}

/** A datum's JSON object: `"value"` for a lone sample, else `"values"` (+ `"counts"` unless all are 1). */
export function fragmentOf(datum: Datum): string {
  const { values, counts } = datum;
  const start = `${datum.series.head},"timestamp":${datum.timestamp}`;
  if (values.length === 1 && counts[0] === 1) return `${start},"value":${values[0]}}`;
  const allOnes = counts.every((c) => c === 1);
  return allOnes
    ? `${start},"values":[${values.join(",")}]}`
    : `${start},"values":[${values.join(",")}],"counts":[${counts.join(",")}]}`;
}

export function envelopeOf(fragments: string[]): string {
  return ENVELOPE_START + fragments.join(",") + ENVELOPE_END;
}

interface WireMetric {
  namespace: string;
  name: string;
  unit?: string;
  dimensions?: Record<string, string>;
  resolution?: 1 | 60;
  timestamp: number;
  value?: number;
  values?: number[];
  counts?: number[];
}

/** The datums of a body this package encoded (already validated, so no rule is checked again). */
export function datumsOf(body: string): Datum[] {
  const envelope = JSON.parse(body) as { metrics: WireMetric[] };
  return envelope.metrics.map((m) => {
    const dimensions: DimensionPairs = Object.entries(m.dimensions ?? {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const unit = m.unit ?? "None";
    const resolution = m.resolution ?? 60;
    const head = seriesHead(m.namespace, m.name, unit, resolution, dimensions);
    const series: Series = { namespace: m.namespace, name: m.name, unit, resolution, dimensions, head };
    const values = m.values ?? [m.value!];
    return { series, timestamp: m.timestamp, values, counts: m.counts ?? values.map(() => 1) };
  });
}

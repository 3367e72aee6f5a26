// Datums into wire-v1 SQS message bodies of bounded size: in slices that yield to the event loop for the sender's
// rounds, in one go for the exit hook (the loop is gone by then).
import { sampleCount } from "./aggregation.js";
import type { OutgoingMessage } from "./sqs.js";
import { ENVELOPE_BYTES, envelopeOf, fragmentOf, type Datum } from "./wire.js";

// Metrics merged, or datums encoded, between two yields to the event loop (about a millisecond of work).
export const SLICE = 8192;

export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Pack datums into messages of at most `maxBytes` (bodies are ASCII JSON: characters = bytes). */
export async function encodeMessages(datums: Iterable<Datum>, maxBytes: number): Promise<OutgoingMessage[]> {
  const limit = maxBytes - ENVELOPE_BYTES;
  const messages: OutgoingMessage[] = [];
  let fragments: string[] = [];
  let carried: Datum[] = [];
  let size = 0;
  let samples = 0;
  let sinceYield = 0;
  for (const datum of datums) {
    const fragment = fragmentOf(datum);
    const added = fragment.length + 1;
    if (fragments.length > 0 && size + added > limit) {
      messages.push({ body: envelopeOf(fragments), datums: carried, samples });
      fragments = [];
      carried = [];
      size = 0;
      samples = 0;
    }
    fragments.push(fragment);
    carried.push(datum);
    size += added;
    samples += sampleCount(datum);
    if (++sinceYield === SLICE) {
      sinceYield = 0;
      await yieldToLoop();
    }
  }
  if (fragments.length > 0) messages.push({ body: envelopeOf(fragments), datums: carried, samples });
  return messages;
}

/** Message bodies of at most `maxBytes` for the exit hook's synchronous sender (no yielding: the loop is gone). */
export function bodiesOf(datums: Iterable<Datum>, maxBytes: number): string[] {
  const bodies: string[] = [];
  let fragments: string[] = [];
  let size = 0;
  for (const datum of datums) {
    const fragment = fragmentOf(datum);
    if (fragments.length > 0 && size + fragment.length + 1 > maxBytes - ENVELOPE_BYTES) {
      bodies.push(envelopeOf(fragments));
      fragments = [];
      size = 0;
    }
    fragments.push(fragment);
    size += fragment.length + 1;
  }
  if (fragments.length > 0) bodies.push(envelopeOf(fragments));
  return bodies;
}

// Validated series, cached by exactly what the caller passed, so a repeated series costs one Map lookup.
import { InvalidMetricError } from "./errors.js";
import {
  checkDimensions,
  checkName,
  checkNamespace,
  checkResolution,
  checkRollups,
  checkUnit,
  type DimensionPairs,
} from "./validation.js";
import { seriesHead, type Series } from "./wire.js";
import type { SendOptions } from "./options.js";

// Series remembered at most; past that the cache starts over (a service with unbounded dimension values).
const MAX_CACHED_SERIES = 10_000;

// A trie over exactly what the caller passed: namespace, name, unit, resolution, then each dimension's name and
// value in the caller's order, then END. Each step is its own Map lookup (no key string is built per call), and only
// inputs identical to an already validated one reach a cached series.
const END = Symbol("series");
type Node = Map<unknown, unknown>;

function step(node: Node, key: unknown): Node {
  let next = node.get(key) as Node | undefined;
  if (next === undefined) node.set(key, (next = new Map()));
  return next;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export class SeriesCache {
  private root: Node = new Map();
  private size = 0;
  // One Series object per canonical series (dimensions sorted), whatever order the caller wrote them in.
  private readonly byHead = new Map<string, Series>();

  /** `defaults`: the producer's default dimensions (validated once), under each call's own. */
  constructor(private readonly defaults: DimensionPairs = []) {}

  /** The validated series for these arguments; throws InvalidMetricError in the Python producer's rule order. */
  lookup(name: unknown, namespace: unknown, options: SendOptions): Series {
    const unit = options.unit === undefined ? "None" : options.unit;
    const resolution = options.storageResolution === undefined ? 60 : options.storageResolution;
    const dimensions = options.dimensions;
    // Types validation must judge (or a Map, or a class instance as dimensions) always take the validating path.
    if (
      options.rollups !== undefined ||
      typeof name !== "string" ||
      typeof namespace !== "string" ||
      typeof unit !== "string" ||
      typeof resolution !== "number" ||
      (dimensions !== undefined && dimensions !== null && Object.getPrototypeOf(dimensions) !== Object.prototype)
    ) {
      if (options.rollups !== undefined) return this.withRollups(name, namespace, options);
      return this.validate(name, namespace, options);
    }
    const cached = this.find(namespace, name, unit, resolution, dimensions as Record<string, unknown> | undefined);
    if (cached !== undefined) return cached;
    const series = this.validate(name, namespace, options);
    if (this.size >= MAX_CACHED_SERIES) {
      this.root = new Map();
      this.byHead.clear();
      this.size = 0;
    }
    let node = step(step(step(step(this.root, namespace), name), unit), resolution);
    if (dimensions)
      for (const dimName in dimensions)
        node = step(step(node, dimName), (dimensions as Record<string, unknown>)[dimName]);
    node.set(END, series);
    this.size += 1;
    return series;
  }

  private find(
    namespace: string,
    name: string,
    unit: string,
    resolution: number,
    dimensions: Record<string, unknown> | null | undefined,
  ): Series | undefined {
    let node = this.root.get(namespace) as Node | undefined;
    node = node?.get(name) as Node | undefined;
    node = node?.get(unit) as Node | undefined;
    node = node?.get(resolution) as Node | undefined;
    if (node !== undefined && dimensions) {
      for (const dimName in dimensions) {
        node = node.get(dimName) as Node | undefined;
        node = node?.get(dimensions[dimName]) as Node | undefined;
        if (node === undefined) return undefined;
      }
    }
    return node?.get(END) as Series | undefined;
  }

  // Roll-ups: cached by the call's arguments and the roll-ups as JSON (a string built per call, only with roll-ups).
  private withRollups(name: unknown, namespace: unknown, options: SendOptions): Series {
    let key: string | undefined;
    try {
      key = JSON.stringify([
        namespace,
        name,
        options.unit,
        options.storageResolution,
        options.dimensions,
        options.rollups,
      ]);
    } catch {
      key = undefined;
    }
    const cached = key === undefined ? undefined : this.byHead.get(key);
    if (cached !== undefined) return cached;
    const series = this.validate(name, namespace, options);
    if (key !== undefined) {
      if (this.byHead.size >= MAX_CACHED_SERIES) this.byHead.clear();
      this.byHead.set(key, series);
    }
    return series;
  }

  private validate(name: unknown, namespace: unknown, options: SendOptions): Series {
    if (namespace === undefined || namespace === null) {
      throw new InvalidMetricError("namespace.missing", "no namespace: pass namespace or set METRICBATCH_NAMESPACE");
    }
    const ns = checkNamespace(namespace);
    const checkedName = checkName(name);
    const unit = checkUnit(options.unit === undefined ? "None" : options.unit);
    const resolution = checkResolution(options.storageResolution === undefined ? 60 : options.storageResolution);
    let given: unknown = options.dimensions;
    // Defaults were validated once; the merged set is validated per new series (the call's own win on a clash).
    // Anything but a plain object or a Map is left to validation, which says why it is wrong.
    if (this.defaults.length > 0 && (given === undefined || given === null || given instanceof Map || isPlain(given))) {
      const merged = new Map<unknown, unknown>(this.defaults);
      if (given instanceof Map) for (const [k, v] of given) merged.set(k, v);
      else if (given) for (const [k, v] of Object.entries(given)) merged.set(k, v);
      given = merged;
    }
    const dimensions = checkDimensions(given);
    const sets = checkRollups(options.rollups, dimensions);
    const head = seriesHead(ns, checkedName, unit, resolution, dimensions);
    const plain = (dims: DimensionPairs, h: string): Series => {
      let series = this.byHead.get(h);
      if (series === undefined) {
        series = { namespace: ns, name: checkedName, unit, resolution, dimensions: dims, head: h };
        this.byHead.set(h, series);
      }
      return series;
    };
    const series = plain(dimensions, head);
    if (sets.length === 0) return series;
    const values = new Map(dimensions);
    const fanout = sets.map((keys) => {
      const dims = keys.map((k) => [k, values.get(k) as string] as const);
      return plain(dims, seriesHead(ns, checkedName, unit, resolution, dims));
    });
    return { ...series, fanout };
  }
}

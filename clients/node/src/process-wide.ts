// State that must exist once per process even when both builds of the package are loaded (an ES module app that
// also requires a CommonJS dependency using metricbatch: the dual-package hazard). Each build has its own module
// instances, so such state lives on globalThis under a registered symbol, which both builds resolve to the same key.

/** The process-wide value for `name`, made by `make` on first use by either build. */
export function processWide<T>(name: string, make: () => T): T {
  const key = Symbol.for(`metricbatch.${name}`);
  const slots = globalThis as unknown as Record<symbol, T | undefined>;
  let value = slots[key];
  if (value === undefined) slots[key] = value = make();
  return value;
}

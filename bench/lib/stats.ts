/** Small statistics over plain arrays: medians of runs and latency percentiles. */

/** The median of `values` (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The p-th percentile (0-100) by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Sum of `values`. */
export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Rounds to `digits` significant decimals for the table and results.json. */
export function round(value: number, digits = 2): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * A 95% bootstrap confidence interval of the median of `values` (2,000 resamples, a fixed
 * seed so the same data gives the same interval).
 */
export function medianCi(values: readonly number[], resamples = 2000): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  let seed = 0x9e3779b9;
  const rand = () => {
    // xorshift32: deterministic, good enough for resampling.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const sample = Array.from({ length: values.length }, () => values[Math.floor(rand() * values.length)]!);
    medians.push(median(sample));
  }
  return [percentile(medians, 2.5), percentile(medians, 97.5)];
}

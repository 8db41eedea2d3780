/**
 * Runs variants in alternating order (A B, B A, A B, ...), so slow drift on a shared machine
 * falls on every variant alike; the figures compare medians taken in the same run.
 */
export async function alternate<T>(runs: number, variants: { name: string; run: () => Promise<T> }[], onResult?: (name: string, round: number, result: T) => void): Promise<Record<string, T[]>> {
  const out: Record<string, T[]> = Object.fromEntries(variants.map((v) => [v.name, [] as T[]]));
  for (let round = 0; round < runs; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const result = await v.run();
      out[v.name]!.push(result);
      onResult?.(v.name, round, result);
    }
  }
  return out;
}

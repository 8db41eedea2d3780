/** What each figure hands back: table rows for the README and raw data for results.json. */

/** One line of the printed (and README) table. */
export interface Row {
  figure: string;
  measure: string;
  value: string;
  goal?: string;
  /**
   * true / false when the row has a goal; 'noise' when the 95% interval of the measurement
   * spans the goal, so this machine cannot tell; undefined when the row is context only.
   */
  met?: boolean | 'noise';
}

export interface FigureResult {
  id: number;
  title: string;
  /** Which tool produced which number. */
  tools: string;
  rows: Row[];
  notes: string[];
  /** Every run's raw numbers, for results.json. */
  data: Record<string, unknown>;
}

/** Settings shared by every figure. */
export interface BenchContext {
  quick: boolean;
  /** Runs per comparison (medians are taken over them). */
  runs: number;
  /** Progress lines on stderr. */
  say(text: string): void;
}

/** "1,234" */
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
/** "1.23" */
export const fixed = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
/** "12.3 ms" with a precision that suits the size. */
export const ms = (n: number): string => `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ms`;

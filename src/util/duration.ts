/**
 * Layer: shared, pure. Duration parsing for config values and CLI flags.
 *
 * Accepted: `200ms`, `1s`, `2m`, `1h`, or a bare non-negative number of
 * seconds (`5`, `0.5`, or the YAML number 5). Anything else is rejected
 * with a message naming the value and the accepted forms.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** What a duration may look like, quoted in error messages. */
export const DURATION_FORMS = "a duration such as '200ms', '1s', '2m' or a number of seconds";

/** Parse a duration into milliseconds, or return undefined if it is not one. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const m = DURATION_RE.exec(value.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const ms = n * UNIT_MS[m[2] ?? 's']!;
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Format milliseconds the way an operator writes them back. */
export function formatDurationMs(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/**
 * Layer: roles, pure. The runtime_config publication rules shared by
 * `vigil monitor publish-runtime` (one shot) and the runtime role's
 * periodic job: the value written (the operator's object plus its
 * publication time), "newer copies win", "unchanged content is not
 * rewritten", and the job's publish / skip decision. No I/O here: the
 * callers read the file, ask the agent and read/write KV.
 */
import { computeKey, COMPUTE_KEYS, encodeJson } from '../monitor/kvschema';

/** The field that dates a copy; a stored copy with a later one is never overwritten. */
export const PUBLISHED_AT = 'vigil_published_at_ms';

/** `<prefix>/compute_nodes/<host>/internal/runtime_config` (os_nova's runtime_info key). */
export function runtimeKey(prefix: string, host: string): string {
  return computeKey(prefix, host, COMPUTE_KEYS.runtimeConfig);
}

/** The runtime_config written: the operator's object plus its publication time (newer wins). */
export function runtimeValue(obj: Record<string, unknown>, nowMs: number): Record<string, unknown> {
  return { ...obj, [PUBLISHED_AT]: nowMs };
}

/** The text written to KV (the same encoding as every os_nova JSON value). */
export function encodeRuntime(obj: Record<string, unknown>, nowMs: number): string {
  return encodeJson(runtimeValue(obj, nowMs));
}

/** True when the stored copy is newer than ours (never overwritten). */
export function storedIsNewer(stored: string | undefined, nowMs: number): boolean {
  if (!stored) return false;
  try {
    const v = JSON.parse(stored) as { vigil_published_at_ms?: unknown };
    return typeof v.vigil_published_at_ms === 'number' && v.vigil_published_at_ms > nowMs;
  } catch { return false; }
}

/**
 * True when the stored copy holds the same object as ours (its time
 * aside): the periodic job then writes nothing, so the key's ModifyIndex
 * moves only when the host's runtime really changed.
 */
export function sameContent(stored: string | undefined, obj: Record<string, unknown>): boolean {
  if (!stored) return false;
  let v: unknown;
  try { v = JSON.parse(stored); } catch { return false; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { [PUBLISHED_AT]: _t, ...rest } = v as Record<string, unknown>;
  return encodeJson(rest) === encodeJson(obj);
}

/** The file's text → the object to publish, or why not (never publish garbage). */
export type FileRead = { ok: true; obj: Record<string, unknown> } | { ok: false; reason: 'file-missing' | 'file-invalid'; detail: string };

/** Parse the runtime_config file's text (undefined: the file is not there). */
export function parseRuntimeFile(text: string | undefined, file: string): FileRead {
  if (text === undefined) return { ok: false, reason: 'file-missing', detail: `${file} does not exist` };
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { return { ok: false, reason: 'file-invalid', detail: `${file}: ${(e as Error).message} (expected a JSON object)` }; }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, reason: 'file-invalid', detail: `${file} is not a JSON object` };
  return { ok: true, obj: v as Record<string, unknown> };
}

export type SkipReason = 'file-missing' | 'file-invalid' | 'unhealthy' | 'unchanged' | 'stored-newer';

/** What one cycle of the periodic job does. */
export type Decision =
  | { publish: true; value: string; cas: number }
  | { publish: false; reason: SkipReason; detail: string };

/** What one cycle knows; `agent` and `stored` are absent when not asked yet (the file decides first). */
export interface CycleInput {
  file: FileRead;
  /** Does the local agent answer and see servers / a leader? */
  agent?: { ok: boolean; detail: string };
  /** The key as read (`null`: absent); needed only when everything above allows a write. */
  stored?: { value: string | undefined; modifyIndex: number } | null;
  nowMs: number;
}

/**
 * The pure decision, in the order the job asks: file (no network when it is
 * missing or not JSON), agent health, then the stored copy. Returns
 * undefined when the next input is needed (`agent`, then `stored`).
 */
export function decideCycle(inp: CycleInput): Decision | undefined {
  if (!inp.file.ok) return { publish: false, reason: inp.file.reason, detail: inp.file.detail };
  if (!inp.agent) return undefined;
  if (!inp.agent.ok) return { publish: false, reason: 'unhealthy', detail: inp.agent.detail };
  if (inp.stored === undefined) return undefined;
  const text = inp.stored?.value;
  if (storedIsNewer(text, inp.nowMs)) return { publish: false, reason: 'stored-newer', detail: 'the stored copy is newer than this clock' };
  if (sameContent(text, inp.file.obj)) return { publish: false, reason: 'unchanged', detail: 'the stored copy holds the same content' };
  return { publish: true, value: encodeRuntime(inp.file.obj, inp.nowMs), cas: inp.stored?.modifyIndex ?? 0 };
}

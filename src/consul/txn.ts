/**
 * Layer: executor (I/O through a {@link Transport}). `PUT /v1/txn` with KV
 * ops (shared/spec/consul-api.md §3g): all-or-nothing, later ops see earlier
 * ones. 200 gives one result per op that produces an entry (deletes and
 * check-not-exists give none); 409 means rolled back and becomes a
 * {@link ConsulTxnConflict} carrying every failing op's `OpIndex` and `What`.
 */
import { ConfigError, VigilError } from '../errors';
import { parseKvEntry, type KvEntry } from './kv';
import { bad, isObject, parseJson, parseMeta, type Consistency, type QueryMeta, type Transport } from './wire';

/** One KV op of a transaction; values are raw bytes (sent base64). */
export type TxnKvOp =
  | { verb: 'set'; key: string; value: Buffer | string; flags?: number }
  | { verb: 'cas'; key: string; value: Buffer | string; index: number; flags?: number }
  | { verb: 'lock' | 'unlock'; key: string; value: Buffer | string; session: string; flags?: number }
  | { verb: 'get' | 'get-tree' | 'get-or-empty' | 'check-not-exists' | 'delete' | 'delete-tree'; key: string }
  | { verb: 'check-index' | 'delete-cas'; key: string; index: number }
  /** `session: ""` passes only while the key is unlocked. */
  | { verb: 'check-session'; key: string; session: string };

/** One failing op of a rolled-back transaction. */
export interface TxnOpError { opIndex: number; what: string }

/** 409 from /v1/txn: nothing was applied. `errors` lists every failing op. */
export class ConsulTxnConflict extends VigilError {
  readonly errors: TxnOpError[];
  constructor(errors: TxnOpError[]) {
    super('ECONSULTXNCONFLICT', `consul txn rolled back: ${errors.map((e) => `op ${e.opIndex}: ${e.what}`).join('; ')}`, {
      retryable: false, detail: { errors },
    });
    this.name = 'ConsulTxnConflict';
    this.errors = errors;
  }
}

/** The answer of an applied transaction. */
export interface TxnResult { results: KvEntry[]; meta: QueryMeta }

/** Ops per transaction this client sends at most: 64 is the limit up to Consul 1.13 (128 from 1.14). */
export const MAX_TXN_OPS = 64;

/** The JSON body of a transaction. */
export function encodeTxn(ops: TxnKvOp[]): string {
  return JSON.stringify(ops.map((op) => {
    if (op.key === '' && op.verb !== 'delete-tree') throw new ConfigError(`txn ${op.verb}: empty key`);
    const kv: Record<string, unknown> = { Verb: op.verb, Key: op.key };
    if ('value' in op) kv.Value = (Buffer.isBuffer(op.value) ? op.value : Buffer.from(op.value)).toString('base64');
    if ('flags' in op && op.flags !== undefined) kv.Flags = op.flags;
    if ('index' in op) kv.Index = op.index;
    if ('session' in op) kv.Session = op.session;
    return { KV: kv };
  }));
}

function parseErrors(v: unknown): TxnOpError[] {
  if (!isObject(v) || !Array.isArray(v.Errors)) throw bad('txn 409 without Errors');
  return v.Errors.map((e) => {
    if (!isObject(e) || typeof e.OpIndex !== 'number' || typeof e.What !== 'string') throw bad('txn error entry');
    return { opIndex: e.OpIndex, what: e.What };
  });
}

/**
 * Run a transaction. A read-only one honours `consistency` (it has no
 * X-Consul-Index and cannot block).
 * @throws ConsulTxnConflict on 409; ConsulHttpError on 400/413/5xx
 */
export async function txn(t: Transport, ops: TxnKvOp[], opts: { consistency?: Consistency; maxOps?: number } = {}): Promise<TxnResult> {
  if (ops.length === 0) throw new ConfigError('txn: no ops');
  const max = opts.maxOps ?? MAX_TXN_OPS;
  if (ops.length > max) throw new ConfigError(`txn: ${ops.length} ops, at most ${max}`);
  const query: Record<string, string | undefined> = {};
  if (opts.consistency === 'stale') query.stale = '';
  else if (opts.consistency === 'consistent') query.consistent = '';
  const r = await t.request('PUT', '/v1/txn', { body: encodeTxn(ops), query, accept: [409] });
  const v = parseJson('PUT /v1/txn', r.body);
  if (r.status === 409) throw new ConsulTxnConflict(parseErrors(v));
  if (!isObject(v)) throw bad('txn answer is not an object');
  const results = v.Results === null || v.Results === undefined ? [] : v.Results;
  if (!Array.isArray(results)) throw bad('txn Results is not a list');
  return {
    results: results.map((x) => {
      if (!isObject(x) || !isObject(x.KV)) throw bad('txn result is not a KV result');
      return parseKvEntry(x.KV);
    }),
    meta: parseMeta(r.headers),
  };
}

/**
 * Layer: role `group`, owner lock (issue 16; shared/spec/consul-api.md §3i).
 * A Consul session lock on `owner_lock.key` (default
 * `vigil/group/NAME/owner`) that a node holds while its group is active, so
 * that a second node's activate is refused (exit 3) while the first may
 * still write to shared storage.
 *
 * `vigil group` is a one-shot process, so it cannot renew a TTL session.
 * By default its session therefore has **no TTL** and is bound to the node's
 * `serfHealth` check (Consul's default): it lives on after the process
 * exits and dies only with the node's Consul agent (the node crashed or was
 * cut off; `serfHealth` critical) or when deactivate releases it. Consul
 * then keeps the key in lock-delay (`owner_lock.lock_delay`, at least the
 * 15 s default) so the other node's activate is still refused until a
 * write in flight on the dead node has had time to end.
 *
 * With `owner_lock.ttl` the session also gets that TTL, and the daemon
 * (`vigil run`, runner.ts) renews it every ttl/2 while it monitors the
 * active group: the lock then also ends when the daemon stops renewing
 * (it died, or the node is cut off from Consul), and a session found gone
 * makes the daemon deactivate the group. Only for nodes that run the
 * daemon: a group activated by hand with no daemon loses its lock after
 * at most 2 × ttl.
 *
 * The session is created for `node` (the Consul node name of this host:
 * `owner_lock.node`, else vigil's `node`, else the hostname), and a hold is
 * recognised as ours by that node name, so a second activate (resuming an
 * interrupted one) on the same node finds its own lock and goes on.
 */
import type { KvEntry, KvPutOptions } from '../../consul/kv';
import type { ConsulSession, SessionSpec } from '../../consul/session';
import { errorMessage } from '../../errors';
import type { PreflightCheck, PreflightResult } from './engine';
import { EXIT, type OwnerLockConfig } from './types';

/** What the lock needs from a Consul client (ConsulClient fits; tests may pass a fake). */
export interface OwnerLockClient {
  kvGet(key: string): Promise<KvEntry | undefined>;
  kvPut(key: string, value: Buffer | string, opts: KvPutOptions): Promise<boolean>;
  sessionCreate(spec: SessionSpec): Promise<string>;
  sessionDestroy(id: string): Promise<boolean>;
  sessionInfo(id: string): Promise<ConsulSession | undefined>;
  /** false when the session is gone (404). */
  sessionRenew(id: string): Promise<boolean>;
}

/** Who holds the key now. */
export type Holder = { kind: 'none' } | { kind: 'ours'; session: string } | { kind: 'other'; session: string; node: string };

/** The owner lock of one group on one node. */
export class OwnerLock {
  /** The session this process created and acquired with (released again if the activation is refused). */
  private created: string | undefined;

  constructor(private readonly client: OwnerLockClient, private readonly cfg: OwnerLockConfig & { node: string }, private readonly group: string) {}

  /** Read the holder of the key (no change). */
  async holder(): Promise<Holder> {
    const e = await this.client.kvGet(this.cfg.key);
    if (!e?.session) return { kind: 'none' };
    const s = await this.client.sessionInfo(e.session);
    // A key naming a session that is already gone is free (the servers release it with the session).
    if (!s) return { kind: 'none' };
    return s.node === this.cfg.node ? { kind: 'ours', session: s.id } : { kind: 'other', session: s.id, node: s.node };
  }

  /**
   * The preflight check. `dry` (plan, --dry-run): only read who holds it.
   * Otherwise acquire it (a change in Consul, not on this host: the
   * check is what gives the right to change anything here).
   */
  check(dry: boolean): PreflightCheck {
    return { name: 'owner lock', run: async () => [await this.run(dry)] };
  }

  private async run(dry: boolean): Promise<PreflightResult> {
    const check = `owner lock ${this.cfg.key}`;
    const t0 = performance.now();
    const done = (ok: boolean, detail: string): PreflightResult => ({ check, ok, detail, elapsedMs: Math.round(performance.now() - t0) });
    try {
      const h = await this.holder();
      if (h.kind === 'other') return done(false, `held by node ${h.node} (session ${h.session})`);
      if (h.kind === 'ours') return done(true, `held by this node (session ${h.session})`);
      if (dry) return done(true, `free: activate would acquire it for node ${this.cfg.node}`);
      const session = await this.client.sessionCreate({
        name: `vigil group ${this.group}`, node: this.cfg.node, lockDelay: `${Math.round(this.cfg.lockDelayMs / 1000)}s`, behavior: 'release',
        // serfHealth ties it to the node's life. No TTL unless configured: a one-shot CLI cannot renew;
        // with owner_lock.ttl the daemon renews it (renew()), so the lock also ends when vigil run stops.
        checks: ['serfHealth'],
        ...(this.cfg.ttlMs !== undefined ? { ttl: this.cfg.ttlMs % 1000 === 0 ? `${this.cfg.ttlMs / 1000}s` : `${this.cfg.ttlMs}ms` } : {}),
      });
      const value = JSON.stringify({ node: this.cfg.node, group: this.group, since: new Date().toISOString() });
      if (await this.client.kvPut(this.cfg.key, value, { acquire: session })) {
        this.created = session;
        return done(true, `acquired for node ${this.cfg.node} (session ${session})`);
      }
      await this.client.sessionDestroy(session).catch(() => false);
      const again = await this.holder().catch((): Holder => ({ kind: 'none' }));
      return done(false, again.kind === 'other' ? `held by node ${again.node} (session ${again.session})`
        : `not acquired: the key is in lock-delay after its last holder's session was invalidated (up to ${this.cfg.lockDelayMs / 1000}s)`);
    } catch (e) {
      return done(false, `could not check the owner lock at ${this.cfg.url}: ${errorMessage(e)}`);
    }
  }

  /**
   * Renew this node's session (owner_lock.ttl): `renewed`, or `lost` when
   * the key is no longer held by this node or its session is gone (the
   * servers invalidated it: another node may acquire after lock-delay).
   * Throws when Consul cannot be asked (not evidence of a loss).
   */
  async renew(): Promise<{ result: 'renewed' | 'lost'; detail: string }> {
    const h = await this.holder();
    if (h.kind === 'none') return { result: 'lost', detail: `owner lock ${this.cfg.key} is no longer held (its session was invalidated or released)` };
    if (h.kind === 'other') return { result: 'lost', detail: `owner lock ${this.cfg.key} is held by node ${h.node}` };
    if (await this.client.sessionRenew(h.session)) return { result: 'renewed', detail: `session ${h.session} renewed` };
    return { result: 'lost', detail: `owner lock ${this.cfg.key}: session ${h.session} is gone` };
  }

  /** Release a hold this process took in its preflight (activation refused or rolled back). */
  async releaseIfCreated(): Promise<string | undefined> {
    if (this.created === undefined) return undefined;
    const s = this.created;
    this.created = undefined;
    return this.releaseSession(s);
  }

  /** Release the lock if this node holds it (after a clean deactivate). Returns what was done, in words. */
  async release(): Promise<string> {
    const h = await this.holder();
    if (h.kind === 'none') return `owner lock ${this.cfg.key} was not held`;
    if (h.kind === 'other') return `owner lock ${this.cfg.key} is held by node ${h.node}, not released`;
    return this.releaseSession(h.session);
  }

  private async releaseSession(session: string): Promise<string> {
    // Release first (no lock-delay for the next holder), then destroy the session.
    await this.client.kvPut(this.cfg.key, JSON.stringify({ node: this.cfg.node, group: this.group, released: new Date().toISOString() }), { release: session });
    await this.client.sessionDestroy(session);
    return `owner lock ${this.cfg.key} released (session ${session})`;
  }
}

/**
 * The lock after the verb: kept while anything may run (activated, or a stop
 * failed: exit 5); released after a clean deactivate, and given back when
 * this activate took it but was refused or rolled back.
 */
export async function lockAfter(lock: OwnerLock, verb: 'activate' | 'deactivate', exit: number): Promise<string | undefined> {
  try {
    if (verb === 'activate') return exit === EXIT.REFUSED || exit === EXIT.ROLLED_BACK ? await lock.releaseIfCreated() : undefined;
    return exit === EXIT.OK ? await lock.release() : exit === EXIT.NOT_ROLLED_BACK ? 'owner lock kept: a member may still run' : undefined;
  } catch (e) {
    return `warning: owner lock: ${errorMessage(e)}`;
  }
}

// ConsulLock.adopt: a journaled hold is taken back only while its session is alive and still names the key.
import t from 'tap';
import { ConsulLock, type LockClient } from '../../src/consul/lock';

function client(state: { alive: Set<string>; holder?: string; lockIndex: number; destroyed: string[] }): LockClient {
  return {
    sessionCreate: async () => 'new',
    sessionRenew: async (id) => state.alive.has(id),
    sessionDestroy: async (id) => { state.destroyed.push(id); state.alive.delete(id); return true; },
    kvPut: async () => true,
    kvGet: async (key) => (state.holder === undefined ? undefined : { key, value: Buffer.from(''), session: state.holder, lockIndex: state.lockIndex } as never),
  };
}

t.test('adopt: alive and holding → held with the current LockIndex and a fresh deadline', async (t) => {
  let now = 1000;
  const st = { alive: new Set(['s1']), holder: 's1', lockIndex: 7, destroyed: [] as string[] };
  const lock = new ConsulLock(client(st), { key: 'k', session: { ttl: '15s' }, now: () => now });
  t.same(await lock.adopt({ key: 'k', session: 's1', lockIndex: 6 }), { key: 'k', session: 's1', lockIndex: 7 });
  t.ok(lock.held());
  now = 1000 + 15_000;
  t.notOk(lock.held(), 'the deadline is the adopt renewal send time + TTL');
});

t.test('adopt: a dead session or another holder → undefined; a live orphan session is destroyed', async (t) => {
  const dead = { alive: new Set<string>(), holder: 'other', lockIndex: 9, destroyed: [] as string[] };
  t.equal(await new ConsulLock(client(dead), { key: 'k', session: { ttl: '15s' } }).adopt({ key: 'k', session: 's1', lockIndex: 6 }), undefined);
  const taken = { alive: new Set(['s1']), holder: 'other', lockIndex: 9, destroyed: [] as string[] };
  const lock = new ConsulLock(client(taken), { key: 'k', session: { ttl: '15s' } });
  t.equal(await lock.adopt({ key: 'k', session: 's1', lockIndex: 6 }), undefined);
  t.same(taken.destroyed, ['s1']);
  t.notOk(lock.held());
});

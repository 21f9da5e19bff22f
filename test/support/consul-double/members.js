/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * LAN members and the heartbeat listener that stands in for gossip
 * (shared/spec/consul-api.md §3a, §3h). Each lab host runs heartbeat.js,
 * which sends a UDP datagram `{"Node": name, "Addr": ip}` to the double's
 * address on that network's bridge every interval. A member is alive (1)
 * while beats arrive and failed (4) once none came for the suspicion
 * timeout (memberlist's minimum is 4 s for small clusters; default here
 * 5 s); its serfHealth follows, which invalidates the sessions bound to it.
 * So cutting a host's veth really turns it failed. A beat after that is a
 * rejoin (alive again). Tests can also set any member's status directly.
 */
'use strict';

const dgram = require('node:dgram');
const crypto = require('node:crypto');

const DEFAULT_SUSPICION_MS = 5000;

function install(D) {
  D.dynamicMembers = new Map(); // name → {name, addr, status, lastBeat, source: 'heartbeat'|'control'}
  D.staticStatus = new Map(); // status overrides for configured servers/clients

  function memberObj(name, addr, role, status) {
    const tags = { dc: D.datacenter, role, segment: '', vsn: '2', vsn_min: '2', vsn_max: '3', build: `${D.version}:28141971`,
      id: name === D.nodeName ? D.nodeId : crypto.createHash('md5').update(name).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5') };
    if (role === 'consul') { tags.port = '8300'; tags.expect = '3'; }
    return { Name: name, Addr: addr, Port: 8301, Tags: tags, Status: status,
      ProtocolMin: 1, ProtocolMax: 5, ProtocolCur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4 };
  }
  D.memberObj = memberObj;

  /** `GET /v1/agent/members`: this agent, the configured servers and clients, then the dynamic members. */
  D.members = () => {
    const out = [memberObj(D.nodeName, D.selfAddr, D.isServer ? 'consul' : 'node', 1)];
    if (D.S.state === 'never-had-servers' && D.dynamicMembers.size === 0) return out;
    const lost = D.S.state === 'servers-lost';
    const statusOf = (name) => (lost ? 4 : D.staticStatus.has(name) ? D.staticStatus.get(name) : 1); // 1 alive, 4 failed
    if (D.S.state !== 'never-had-servers') {
      for (const s of D.S.servers) if (s.name !== D.nodeName) out.push(memberObj(s.name, s.addr, 'consul', statusOf(s.name)));
      for (const c of D.S.clients) out.push(memberObj(c.name, c.addr, 'node', statusOf(c.name)));
    }
    for (const m of D.dynamicMembers.values()) out.push(memberObj(m.name, m.addr, m.role || 'node', m.status));
    return out;
  };

  /** Register the configured members in the catalog (serfHealth passing). */
  D.syncStaticNodes = () => {
    D.registerNode(D.nodeName, D.selfAddr);
    for (const m of D.S.servers.concat(D.S.clients)) D.registerNode(m.name, m.addr);
  };

  /** Set a member's status (1 alive, 3 left, 4 failed) and write serfHealth from it. */
  D.setMemberStatus = (name, status, addr, source) => {
    if (![1, 3, 4].includes(status)) throw new Error(`member status ${status}: 1 alive, 3 left or 4 failed`);
    const isStatic = D.S.servers.concat(D.S.clients).some((m) => m.name === name);
    let prev;
    if (isStatic) { prev = D.staticStatus.get(name) || 1; D.staticStatus.set(name, status); } else {
      let m = D.dynamicMembers.get(name);
      if (!m) { m = { name, addr: addr || '', status: 0, lastBeat: 0, source: source || 'control' }; D.dynamicMembers.set(name, m); }
      if (addr) m.addr = addr;
      prev = m.status;
      m.status = status;
    }
    if (prev === status && D.nodeRegistered(name) === (status !== 3)) return;
    D.log(`member ${name} ${prev} -> ${status}`);
    if (status !== 3) D.registerNode(name, addr || '');
    D.serfFromStatus(name, status);
    D.changed();
  };

  /** One heartbeat from a lab host: alive (or a rejoin after failed/left). */
  D.heartbeat = (name, addr) => {
    let m = D.dynamicMembers.get(name);
    if (!m) { m = { name, addr, status: 0, lastBeat: 0, source: 'heartbeat' }; D.dynamicMembers.set(name, m); }
    m.lastBeat = Date.now();
    m.beats = (m.beats || 0) + 1;
    if (m.status !== 1) D.setMemberStatus(name, 1, addr, 'heartbeat');
  };

  const suspicionMs = () => (D.opts.heartbeat && Number.isFinite(D.opts.heartbeat.suspicionTimeoutMs) ? D.opts.heartbeat.suspicionTimeoutMs : DEFAULT_SUSPICION_MS);

  /** Failure detection: an alive heartbeat member silent for the suspicion timeout is failed. */
  D.sweepMembers = () => {
    const now = Date.now();
    for (const m of D.dynamicMembers.values()) {
      if (m.source === 'heartbeat' && m.status === 1 && now - m.lastBeat > suspicionMs()) D.setMemberStatus(m.name, 4);
    }
  };

  let sock;
  let sweeper;
  /** Listen for heartbeats when `double.heartbeat` is configured; resolves with the UDP port. */
  D.startHeartbeats = () => new Promise((resolve, reject) => {
    const hb = D.opts.heartbeat;
    if (!hb) { resolve(undefined); return; }
    sock = dgram.createSocket('udp4');
    sock.on('message', (buf, rinfo) => {
      let msg;
      try { msg = JSON.parse(buf.toString('utf8')); } catch { return; }
      if (!msg || typeof msg.Node !== 'string' || msg.Node === '' || msg.Node.length > 128) return;
      D.heartbeat(msg.Node, typeof msg.Addr === 'string' ? msg.Addr : rinfo.address);
    });
    sock.once('error', reject);
    sock.bind(Number.isInteger(hb.port) ? hb.port : 0, hb.host || D.host, () => {
      sweeper = setInterval(D.sweepMembers, Math.max(20, Math.min(250, suspicionMs() / 5)));
      sweeper.unref();
      resolve(sock.address().port);
    });
  });

  D.stopHeartbeats = () => {
    clearInterval(sweeper);
    if (sock) { try { sock.close(); } catch { /* closed */ } sock = undefined; }
  };
}

module.exports = { install, DEFAULT_SUSPICION_MS };

/*
 * Layer: test support, part of the Consul TEST DOUBLE (not Consul).
 * Agent-local endpoints (shared/spec/consul-api.md §3a, §3d, §3e):
 * `agent/self` with string-typed Stats, `status/leader|peers`, PUT-only
 * join on 1.x.
 */
'use strict';

const { json, text, send, methodNotAllowed } = require('./util');

function install(D) {
  const S = D.S;

  function serfLanStats() {
    const ms = D.members();
    const failed = ms.filter((m) => m.Status === 4).length;
    return { coordinate_resets: '0', encrypted: 'false', event_queue: '0', event_time: String(S.ltime + 1),
      failed: String(failed), health_score: S.state === 'servers-lost' ? '2' : '0', intent_queue: '0', left: String(ms.filter((m) => m.Status === 3).length),
      member_time: String(ms.length + 1), members: String(ms.length), query_queue: '0', query_time: '1' };
  }

  D.leaderAddr = () => {
    if (!D.knownLeader()) return '';
    const s = S.servers[0];
    return `${s ? s.addr : D.selfAddr}:8300`;
  };

  D.agentSelf = () => {
    const consul = D.isServer
      ? { bootstrap: 'false', known_datacenters: '1', leader: String(D.leaderAddr() === `${D.selfAddr}:8300`), leader_addr: D.leaderAddr(), server: 'true' }
      : { known_servers: String(D.knownServersNow()), server: 'false' };
    if (D.hasAcl) consul.acl = 'disabled';
    const stats = {
      agent: { check_monitors: '0', check_ttls: '0', checks: '0', services: String(S.services.length) },
      build: { prerelease: '', revision: '28141971', version: D.version },
      consul,
      runtime: { arch: 'amd64', cpu_count: '2', goroutines: '115', max_procs: '2', os: 'linux', version: 'go1.10.1' },
      serf_lan: serfLanStats(),
    };
    if (D.isServer) {
      stats.raft = { applied_index: String(D.index), commit_index: String(D.index), fsm_pending: '0', last_contact: '0',
        num_peers: String(Math.max(0, S.servers.length - 1)), state: consul.leader === 'true' ? 'Leader' : 'Follower', term: '2' };
      stats.serf_wan = Object.assign({}, stats.serf_lan, { members: '1', failed: '0', health_score: '0' });
    }
    const cfg = D.cfg;
    const config = D.legacy
      ? { Bootstrap: false, Server: D.isServer, Datacenter: D.datacenter, DataDir: cfg.data_dir || '/tmp/consul', NodeID: D.nodeId,
        NodeName: D.nodeName, ClientAddr: D.host, BindAddr: cfg.bind_addr || '0.0.0.0', AdvertiseAddr: D.selfAddr,
        Ports: { DNS: 8600, HTTP: D.port, RPC: 8400, SerfLan: 8301, SerfWan: 8302, Server: 8300 }, Version: D.version, Revision: '28141971' }
      : { Datacenter: D.datacenter, NodeName: D.nodeName, NodeID: D.nodeId, Server: D.isServer, Revision: '28141971', Version: D.version };
    return { Config: config, Coord: { Vec: [0, 0, 0, 0, 0, 0, 0, 0], Error: 1.5, Adjustment: 0, Height: 1e-05 },
      Member: D.memberObj(D.nodeName, D.selfAddr, D.isServer ? 'consul' : 'node', 1), Stats: stats, Meta: {} };
  };

  D.handleJoin = (req, res, rawAddr, query) => {
    const addr = decodeURIComponent(rawAddr);
    const rec = { addr, wan: query.has('wan'), method: req.method, at: Date.now(), status: 0 };
    S.joins.push(rec);
    if (!D.legacy && req.method !== 'PUT') { rec.status = 405; return methodNotAllowed(res, req.method, ['PUT']); }
    const host = D.stripPort(addr);
    const server = S.servers.find((s) => s.addr === host);
    const client = S.clients.find((c) => c.addr === host);
    const fail = (why) => { rec.status = 500; text(res, 500, `1 error occurred:\n\t* Failed to join ${host}: dial tcp ${host}:8301: ${why}\n\n`); };
    if (!server && !client) return fail('connect: connection refused');
    if (S.state === 'servers-lost' || S.state === 'never-had-servers') {
      // The network is what failed; a join "heals" only when the test says the path is back.
      if (!S.healOnJoin) return fail('i/o timeout');
      if (server) D.setState('healthy');
    }
    rec.status = 200;
    return send(res, 200, '');
  };

  D.handleStatus = (req, res, what) => {
    if (req.method !== 'GET') return methodNotAllowed(res, req.method, ['GET']);
    if (!D.serversReachable()) return text(res, 500, D.NO_SERVERS);
    if (what === 'leader') return json(res, D.leaderAddr());
    const peers = S.servers.map((s) => `${s.addr}:8300`);
    return json(res, peers.length > 0 ? peers : [`${D.selfAddr}:8300`]);
  };
}

module.exports = { install };

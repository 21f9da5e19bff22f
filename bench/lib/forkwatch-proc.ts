/**
 * Layer: bench support, process entry. A forkstat-like watcher: listens to
 * the kernel's process events connector (NETLINK_CONNECTOR, CN_IDX_PROC)
 * and prints one line per new process, `F <parent tgid> <child pid>`.
 * Threads (a new task inside an existing thread group) are not processes
 * and are left out.
 *
 * It runs as its own process so that an overrun of its socket (the netlink
 * package aborts on ENOBUFS) can never take the bench down; the bench reads
 * its lines and counts the forks of the daemons it watches. The connector
 * exists only in the machine's initial network namespace: it only listens
 * to the kernel, it sends nothing on any network.
 *
 *   node forkwatch-proc.js        prints `R` once subscribed
 */
import { RawNetlinkSocket } from 'netlink';

const NETLINK_CONNECTOR = 11;
const CN_IDX_PROC = 1;
const CN_VAL_PROC = 1;
const PROC_CN_MCAST_LISTEN = 1;
const NLMSG_DONE = 3;
const PROC_EVENT_FORK = 0x00000001;
/** nlmsghdr (16) + cn_msg (20): where struct proc_event starts. */
const EVENT_AT = 36;

function subscribeMessage(port: number): Buffer {
  const b = Buffer.alloc(16 + 20 + 4);
  b.writeUInt32LE(b.length, 0); // nlmsg_len
  b.writeUInt16LE(NLMSG_DONE, 4); // nlmsg_type
  b.writeUInt16LE(0, 6); // nlmsg_flags
  b.writeUInt32LE(0, 8); // nlmsg_seq
  b.writeUInt32LE(port, 12); // nlmsg_pid
  b.writeUInt32LE(CN_IDX_PROC, 16); // cn_msg.id.idx
  b.writeUInt32LE(CN_VAL_PROC, 20); // cn_msg.id.val
  b.writeUInt32LE(0, 24); // seq
  b.writeUInt32LE(0, 28); // ack
  b.writeUInt16LE(4, 32); // len of data
  b.writeUInt16LE(0, 34); // flags
  b.writeUInt32LE(PROC_CN_MCAST_LISTEN, 36); // enum proc_cn_mcast_op
  return b;
}

function main(): void {
  const sock = new RawNetlinkSocket(NETLINK_CONNECTOR, { localGroups: CN_IDX_PROC, recvBufferSize: 0, sendBufferSize: 0 });
  // A large queue: forks elsewhere on the machine arrive too, in bursts.
  try { sock.setRecvBufferSize(8 * 1024 * 1024); } catch { /* keep the default */ }
  let out: string[] = [];
  setInterval(() => { if (out.length) { process.stdout.write(out.join('')); out = []; } }, 20);
  sock.on('message', (msg: Buffer) => {
    for (let off = 0; off + EVENT_AT + 32 <= msg.length;) {
      const len = msg.readUInt32LE(off);
      if (len < 16) break;
      const what = msg.readUInt32LE(off + EVENT_AT);
      if (what === PROC_EVENT_FORK) {
        // struct proc_event: what, cpu, u64 timestamp, then fork {parent_pid, parent_tgid, child_pid, child_tgid}.
        const data = off + EVENT_AT + 16;
        const parentTgid = msg.readInt32LE(data + 4);
        const childPid = msg.readInt32LE(data + 8);
        const childTgid = msg.readInt32LE(data + 12);
        if (childPid === childTgid) out.push(`F ${parentTgid} ${childPid}\n`);
      }
      off += (len + 3) & ~3;
    }
  });
  sock.on('error', (e: Error) => {
    process.stderr.write(`forkwatch: ${e.message}\n`);
    process.exit(1);
  });
  sock.send(subscribeMessage(sock.address().port), {}, (err?: Error) => {
    if (err) {
      process.stderr.write(`forkwatch: subscribe failed: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write('R\n');
  });
  process.stdout.on('error', () => process.exit(0));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
}

main();

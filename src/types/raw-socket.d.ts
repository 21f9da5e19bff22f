/** The part of the `raw-socket` package vigil uses (the package ships no types). */
declare module 'raw-socket' {
  import { EventEmitter } from 'node:events';
  export const Protocol: { None: number; ICMP: number; TCP: number; UDP: number; ICMPv6: number };
  export const AddressFamily: { IPv4: number; IPv6: number };
  export interface SocketOptions { addressFamily?: number; protocol?: number; bufferSize?: number; generateChecksums?: boolean; checksumOffset?: number }
  export class Socket extends EventEmitter {
    send(buffer: Buffer, offset: number, length: number, address: string, afterCallback: (error: Error | null, bytes: number) => void): void;
    send(buffer: Buffer, offset: number, length: number, address: string, beforeCallback: () => void, afterCallback: (error: Error | null, bytes: number) => void): void;
    pauseRecv(): this;
    resumeRecv(): this;
    pauseSend(): this;
    resumeSend(): this;
    close(): this;
  }
  export function createSocket(options?: SocketOptions): Socket;
}

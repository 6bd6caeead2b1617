import { readdir, readFile, readlink } from 'node:fs/promises';

/** A listening TCP socket, as the kernel lists it. */
export interface ListeningSocket {
  address: string;
  port: number;
  inode: number;
}

/** `0100007F` (a little-endian 32-bit word per 8 hex digits) to `127.0.0.1`, or to an IPv6 address. */
const addressOf = (hex: string): string => {
  const bytes = hex.match(/.{8}/g)!.flatMap((word) => Buffer.from(word, 'hex').reverse().toJSON().data);
  if (bytes.length === 4) return bytes.join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16));
  // Written out in full: node:net parses it, no need for the :: shorthand.
  return groups.join(':');
};

/**
 * Every listening TCP socket on this machine (Linux: /proc/net/tcp and tcp6, state 0A). Reading them sends no
 * traffic anywhere.
 */
export async function listeningSockets(): Promise<ListeningSocket[]> {
  const sockets: ListeningSocket[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8')).split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== '0A') continue;
      const [address, port] = fields[1]!.split(':');
      sockets.push({ address: addressOf(address!), port: parseInt(port!, 16), inode: Number(fields[9]) });
    }
  }
  return sockets;
}

/** The socket inodes process `pid` holds open (those of its fds that are sockets). */
const socketInodes = async (pid: number): Promise<number[]> => {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
  const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return links.flatMap((link) => /^socket:\[(\d+)\]$/.exec(link)?.[1] ?? []).map(Number);
};

const allPids = async (): Promise<number[]> => (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);

/** `root` and every process below it. */
export async function processTree(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const pid of await allPids()) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // The command name (2nd field) is in parentheses and may hold spaces: the parent pid follows its closing one.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid) parents.set(pid, ppid);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  return tree;
}

/** The listening TCP sockets that any of `pids` holds. */
export async function listeningSocketsOf(pids: number[]): Promise<ListeningSocket[]> {
  const inodes = new Set((await Promise.all(pids.map(socketInodes))).flat());
  return (await listeningSockets()).filter((socket) => inodes.has(socket.inode));
}

/** The processes holding a listening socket on `port`. */
export async function listenersOn(port: number): Promise<number[]> {
  const inodes = new Set((await listeningSockets()).filter((socket) => socket.port === port).map((socket) => socket.inode));
  const pids: number[] = [];
  for (const pid of await allPids()) if ((await socketInodes(pid)).some((inode) => inodes.has(inode))) pids.push(pid);
  return pids;
}

import { isIP } from 'node:net';

/**
 * Which `Host` headers the viewer answers: the defence against DNS rebinding,
 * where a page on evil.example points its own name at the viewer's address and
 * then reads the actors with the browser's same-origin blessing. The browser
 * still sends `Host: evil.example`, so the viewer answers only names that
 * cannot be rebound:
 *
 * - the host it was bound to, as given (`myhost`) and as the address it bound (`127.0.0.1`);
 * - bound to a loopback address (`127.0.0.1`, `localhost`, `::1`): also `localhost` and every loopback literal;
 * - bound to a wildcard (`0.0.0.0`, `::`): also `localhost` and any IP literal. Other names are refused,
 *   because the viewer cannot tell the machine's own names from an attacker's; bind to the name
 *   (`viewer: { host: 'myhost' }`) to browse by it.
 *
 * The port is not checked: only the name can be rebound, and an SSH tunnel or a
 * port forward legitimately changes the port (`ssh -L 9000:localhost:4400`).
 */
export interface HostGuard {
  /** True when a request with this `Host` header may be answered. */
  allows(header: string | undefined): boolean;
  /** The accepted names, for the refusal message. */
  readonly accepted: string;
}

/** The guard for a server bound to `bindHost` (as the user gave it) that listens on `boundAddress`. */
export function hostGuard(bindHost: string, boundAddress: string): HostGuard {
  const bound = canonical(boundAddress);
  const wildcard = bound === '0.0.0.0' || bound === '::';
  const loopback = isLoopback(bound);
  const names = new Set([canonical(bindHost), bound]);
  if (loopback || wildcard) names.add('localhost');
  const literals = wildcard ? 'any IP address' : loopback ? 'loopback addresses' : undefined;
  const shown = [...names].filter((n) => n !== '0.0.0.0' && n !== '::').map((n) => (isIP(n) === 6 ? `[${n}]` : n));
  return {
    accepted: [...shown, ...(literals ? [literals] : [])].join(', '),
    allows(header) {
      const name = hostName(header);
      if (name === undefined) return false;
      if (names.has(name)) return true;
      if (isIP(name) === 0) return false;
      return wildcard || (loopback && isLoopback(name));
    },
  };
}

// `[v6]`, `v4` or a DNS name, then an optional port; anything else (userinfo, paths, spaces) is refused.
const HOST = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d{1,5})?$/i;

/** The name part of a `Host` header, canonical; undefined when the header is missing or malformed. */
function hostName(header: string | undefined): string | undefined {
  const m = HOST.exec(header ?? '');
  if (!m) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? canonical(m[1]) : undefined;
  return canonical(m[2] as string);
}

/** Lower case, brackets off, IPv6 in its one canonical spelling (`0:0::1` is `::1`). */
function canonical(host: string): string {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 6) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare;
  }
}

function isLoopback(ip: string): boolean {
  if (isIP(ip) === 4) return ip.startsWith('127.');
  // The URL parser spells an IPv4-mapped loopback `::ffff:7f00:1`.
  return ip === '::1' || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(ip);
}

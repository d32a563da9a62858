// Lab helper: send UDP datagrams to a (multicast or unicast) address.
// usage: node mcast_send.mjs GROUP PORT COUNT TTL LOCAL_ADDR INTERVAL_MS [PAYLOAD]
// IPv6: LOCAL_ADDR is ADDR%DEV (source address and egress device); TTL is the hop limit.
// Plain JS, no deps: it runs via `ip netns exec NS node FILE` without tsx.
import dgram from "node:dgram";
import process from "node:process";
import { Buffer } from "node:buffer";
import { setTimeout as sleep } from "node:timers/promises";

const [group, portS, countS, ttlS, localAddr, intervalS, payload = "mfct"] = process.argv.slice(2);
const port = Number(portS);
const count = Number(countS);
const ttl = Number(ttlS);
const intervalMs = Number(intervalS);
if (!group || !localAddr || !(port > 0) || !(count >= 0) || !(ttl >= 0) || !(intervalMs >= 0)) {
  process.stderr.write("usage: mcast_send.mjs GROUP PORT COUNT TTL LOCAL_ADDR INTERVAL_MS [PAYLOAD]\n");
  process.exit(2);
}

const v6 = group.includes(":");
const [bindAddr, dev] = v6 ? localAddr.split("%") : [localAddr, undefined];
const sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4" });
sock.on("error", (err) => {
  process.stderr.write(`send error: ${err.message}\n`);
  process.exit(1);
});
/** @param {Buffer} buf @returns {Promise<void>} */
const sendOne = (buf) =>
  new Promise((resolve, reject) => sock.send(buf, port, group, (err) => (err ? reject(err) : resolve())));

// Bind to the local address so the source IP is deterministic (matters for (S,G) routes).
sock.bind(0, bindAddr, () => {
  void (async () => {
    try {
      sock.setMulticastTTL(ttl);
      sock.setTTL(ttl); // same TTL for unicast sends (reachability checks)
      // Egress interface: the one owning localAddr (IPv4), or the device named (IPv6: "::%dev").
      sock.setMulticastInterface(v6 ? `::%${dev}` : localAddr);
      sock.setMulticastLoopback(false);
      const buf = Buffer.from(payload);
      for (let i = 0; i < count; i++) {
        if (i > 0 && intervalMs > 0) await sleep(intervalMs);
        await sendOne(buf);
      }
      sock.close();
      process.exit(0);
    } catch (err) {
      process.stderr.write(`send error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
  })();
});

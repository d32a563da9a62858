// Lab helper: join GROUP on LOCAL_ADDR's interface and print "RX <payload>" per datagram on PORT.
// usage: node mcast_recv.mjs GROUP PORT LOCAL_ADDR   (GROUP "-" = no join, unicast only)
// IPv6: LOCAL_ADDR is ADDR%DEV, the device to join on.
// Prints "READY" once bound and joined. Exits on SIGTERM/SIGINT, or when stdin closes
// (i.e. the parent test process died) so it can never outlive its lab.
import dgram from "node:dgram";
import process from "node:process";

const [group, portS, localAddr] = process.argv.slice(2);
const port = Number(portS);
if (!group || !localAddr || !(port > 0)) {
  process.stderr.write("usage: mcast_recv.mjs GROUP PORT LOCAL_ADDR\n");
  process.exit(2);
}

const v6 = group.includes(":") || localAddr.includes(":");
const sock = dgram.createSocket({ type: v6 ? "udp6" : "udp4", reuseAddr: true });
sock.on("error", (err) => {
  process.stderr.write(`recv error: ${err.message}\n`);
  process.exit(1);
});
sock.on("message", (msg) => {
  // One line per datagram; payloads are expected to be single-line text.
  process.stdout.write(`RX ${msg.toString().replace(/\n/g, "\\n")}\n`);
});
// Bind to 0.0.0.0: on Linux a socket bound to a unicast address would not see group traffic.
sock.bind(port, v6 ? "::" : "0.0.0.0", () => {
  try {
    if (group !== "-") sock.addMembership(group, v6 ? `::%${localAddr.split("%")[1] ?? "eth0"}` : localAddr);
  } catch (err) {
    process.stderr.write(`join error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  process.stdout.write("READY\n");
});

const quit = () => {
  try {
    sock.close();
  } finally {
    process.exit(0);
  }
};
process.on("SIGTERM", quit);
process.on("SIGINT", quit);
process.stdin.on("end", quit);
process.stdin.on("error", quit);
process.stdin.resume();

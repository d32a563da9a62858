/**
 * The struct encoders and decoders (src/kernel/structs.ts, structs6.ts) against the kernel's own
 * headers: a C program, compiled at test time with gcc against linux/mroute.h, linux/mroute6.h and
 * netinet/in.h, fills each struct with the values below and prints its bytes; our encoders must
 * produce the same bytes, and our decoders must read the kernel's output fields (counters,
 * upcall messages) back as the values the program wrote. A moved offset fails it.
 * Needs gcc and libc6-dev (with linux-libc-dev): scripts/setup.sh installs them for tests.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  GROUP_REQ_SIZE, GROUP_SOURCE_REQ_SIZE, IGMPMSG_SIZE, MFCCTL_SIZE, SIOC_SG_REQ_SIZE, SIOC_VIF_REQ_SIZE, VIFCTL_SIZE,
  decodeIgmpmsg, decodeSgReq, decodeVifReq, encodeGroupReq, encodeMfcctl, encodeSgReq, encodeVifReq, encodeVifctl,
} from "../../src/kernel/structs.js";
import {
  MF6CCTL_SIZE, MIF6CTL_SIZE, MRT6MSG_SIZE, SIOC_MIF_REQ6_SIZE, SIOC_SG_REQ6_SIZE,
  decodeMifReq6, decodeMrt6msg, decodeSgReq6, encodeMf6cctl, encodeMif6ctl, encodeMifReq6, encodeSgReq6,
} from "../../src/kernel/structs6.js";

// The values both sides use. Counters are distinct per field, so a swapped pair shows.
const V = {
  vif: { vifi: 7, ifindex: 0x01020304, threshold: 3 },
  mfc: { origin: "10.1.2.3", group: "239.4.5.6", parent: 5, ttls: [0, 1, 0, 0, 0, 0, 0, 9, ...Array<number>(23).fill(0), 200] },
  sg: { origin: "10.9.8.7", group: "232.1.2.3" },
  join4: { ifindex: 0x0a0b0c0d, group: "232.1.2.3", source: "10.9.8.7" },
  join6: { ifindex: 0x0a0b0c0d, group: "ff3e::1:2", source: "2001:db8::5" },
  mif: { vifi: 17, ifindex: 0xbeef, threshold: 4 },
  // MIFs 0, 1, 5 and 31 are members (ttl != 0); 2 is not.
  mf6c: { origin: "2001:db8::1", group: "ff3e::4321", parent: 3, ttls: [1, 1, 0, 0, 0, 64, ...Array<number>(25).fill(0), 255] },
  sg6: { origin: "2001:db8::77", group: "ff3e::abcd" },
  upcall4: { vifi: 0x0105, source: "192.0.2.1", group: "239.9.9.9" },
  upcall6: { vifi: 300, source: "2001:db8:1::2", group: "ff3e::9" },
};

const program = `
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <linux/mroute.h>
#include <linux/mroute6.h>

static void dump(const char *name, const void *p, size_t n) {
  const unsigned char *b = p;
  printf("%s ", name);
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
  printf("\\n");
}
static void in4(const char *text, struct in_addr *a) { inet_pton(AF_INET, text, a); }
static void in6(const char *text, struct in6_addr *a) { inet_pton(AF_INET6, text, a); }
static void sin4(const char *text, struct sockaddr_storage *ss) {
  struct sockaddr_in *s = (struct sockaddr_in *)ss;
  s->sin_family = AF_INET;
  in4(text, &s->sin_addr);
}
static void sin6(const char *text, struct sockaddr_in6 *s) {
  s->sin6_family = AF_INET6;
  in6(text, &s->sin6_addr);
}

int main(void) {
  { struct vifctl v; memset(&v, 0, sizeof v);
    v.vifc_vifi = ${V.vif.vifi}; v.vifc_flags = VIFF_USE_IFINDEX; v.vifc_threshold = ${V.vif.threshold};
    v.vifc_lcl_ifindex = ${V.vif.ifindex};
    dump("vifctl", &v, sizeof v); }
  { struct mfcctl m; memset(&m, 0, sizeof m);
    in4("${V.mfc.origin}", &m.mfcc_origin); in4("${V.mfc.group}", &m.mfcc_mcastgrp); m.mfcc_parent = ${V.mfc.parent};
    ${V.mfc.ttls.map((t, i) => (t ? `m.mfcc_ttls[${i}] = ${t};` : "")).join(" ")}
    dump("mfcctl", &m, sizeof m); }
  { struct sioc_sg_req r; memset(&r, 0, sizeof r);
    in4("${V.sg.origin}", &r.src); in4("${V.sg.group}", &r.grp);
    dump("sioc_sg_req.in", &r, sizeof r);
    r.pktcnt = 0x0101010101UL; r.bytecnt = 0x0202020202UL; r.wrong_if = 0x0303030303UL;
    dump("sioc_sg_req.out", &r, sizeof r); }
  { struct sioc_vif_req r; memset(&r, 0, sizeof r);
    r.vifi = ${V.vif.vifi};
    dump("sioc_vif_req.in", &r, sizeof r);
    r.icount = 0x11; r.ocount = 0x22; r.ibytes = 0x3333333333UL; r.obytes = 0x4444444444UL;
    dump("sioc_vif_req.out", &r, sizeof r); }
  { struct igmpmsg m; memset(&m, 0, sizeof m);
    m.im_msgtype = IGMPMSG_NOCACHE; m.im_mbz = 0; m.im_vif = ${V.upcall4.vifi & 0xff}; m.im_vif_hi = ${V.upcall4.vifi >> 8};
    in4("${V.upcall4.source}", &m.im_src); in4("${V.upcall4.group}", &m.im_dst);
    dump("igmpmsg", &m, sizeof m); }
  { struct group_req g; memset(&g, 0, sizeof g);
    g.gr_interface = ${V.join4.ifindex}; sin4("${V.join4.group}", &g.gr_group);
    dump("group_req4", &g, sizeof g); }
  { struct group_source_req g; memset(&g, 0, sizeof g);
    g.gsr_interface = ${V.join4.ifindex}; sin4("${V.join4.group}", &g.gsr_group); sin4("${V.join4.source}", &g.gsr_source);
    dump("group_source_req4", &g, sizeof g); }
  { struct group_req g; memset(&g, 0, sizeof g);
    g.gr_interface = ${V.join6.ifindex}; sin6("${V.join6.group}", (struct sockaddr_in6 *)&g.gr_group);
    dump("group_req6", &g, sizeof g); }
  { struct group_source_req g; memset(&g, 0, sizeof g);
    g.gsr_interface = ${V.join6.ifindex}; sin6("${V.join6.group}", (struct sockaddr_in6 *)&g.gsr_group);
    sin6("${V.join6.source}", (struct sockaddr_in6 *)&g.gsr_source);
    dump("group_source_req6", &g, sizeof g); }
  { struct mif6ctl m; memset(&m, 0, sizeof m);
    m.mif6c_mifi = ${V.mif.vifi}; m.mif6c_flags = 0; m.vifc_threshold = ${V.mif.threshold}; m.mif6c_pifi = ${V.mif.ifindex};
    dump("mif6ctl", &m, sizeof m); }
  { struct mf6cctl m; memset(&m, 0, sizeof m);
    sin6("${V.mf6c.origin}", &m.mf6cc_origin); sin6("${V.mf6c.group}", &m.mf6cc_mcastgrp); m.mf6cc_parent = ${V.mf6c.parent};
    ${V.mf6c.ttls.map((t, i) => (t ? `IF_SET(${i}, &m.mf6cc_ifset);` : "")).join(" ")}
    dump("mf6cctl", &m, sizeof m); }
  { struct sioc_sg_req6 r; memset(&r, 0, sizeof r);
    sin6("${V.sg6.origin}", &r.src); sin6("${V.sg6.group}", &r.grp);
    dump("sioc_sg_req6.in", &r, sizeof r);
    r.pktcnt = 0x0505050505UL; r.bytecnt = 0x0606060606UL; r.wrong_if = 0x07;
    dump("sioc_sg_req6.out", &r, sizeof r); }
  { struct sioc_mif_req6 r; memset(&r, 0, sizeof r);
    r.mifi = ${V.mif.vifi};
    dump("sioc_mif_req6.in", &r, sizeof r);
    r.icount = 0x55; r.ocount = 0x66; r.ibytes = 0x7777777777UL; r.obytes = 0x8888888888UL;
    dump("sioc_mif_req6.out", &r, sizeof r); }
  { struct mrt6msg m; memset(&m, 0, sizeof m);
    m.im6_mbz = 0; m.im6_msgtype = MRT6MSG_NOCACHE; m.im6_mif = ${V.upcall6.vifi};
    in6("${V.upcall6.source}", &m.im6_src); in6("${V.upcall6.group}", &m.im6_dst);
    dump("mrt6msg", &m, sizeof m); }
  return 0;
}
`;

/** Compiles and runs the program; fails (never skips) when gcc or the headers are missing. */
function kernelStructs(): Map<string, Buffer> {
  const dir = mkdtempSync(join(tmpdir(), "mfct-structs-"));
  try {
    writeFileSync(join(dir, "structs.c"), program);
    try {
      execFileSync("gcc", ["-Wall", "-Werror", "-o", join(dir, "structs"), join(dir, "structs.c")], { stdio: "pipe" });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
      if (e.code === "ENOENT") assert.fail("gcc is not installed: the struct layout test needs it (apt-get install gcc libc6-dev; scripts/setup.sh test does)");
      assert.fail(`cannot compile against the kernel headers (missing libc6-dev / linux-libc-dev?):\n${e.stderr?.toString() ?? e.message}`);
    }
    const out = execFileSync(join(dir, "structs"), { encoding: "utf8" });
    return new Map(out.trim().split("\n").map((line) => {
      const [name, hex] = line.split(" ") as [string, string];
      return [name, Buffer.from(hex, "hex")];
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void test("struct encoders and decoders match the kernel headers (gcc)", async (t) => {
  const c = kernelStructs();
  const kernel = (name: string): Buffer => {
    const b = c.get(name);
    assert.ok(b, `the C program printed no ${name}`);
    return b;
  };
  const same = (name: string, ours: Buffer, size: number): void => {
    assert.equal(size, kernel(name).length, `${name}: our size constant vs sizeof`);
    assert.equal(ours.subarray(0, size).toString("hex"), kernel(name).toString("hex"), `${name}: bytes`);
  };

  await t.test("IPv4: vifctl, mfcctl, sioc_sg_req, sioc_vif_req, igmpmsg", () => {
    same("vifctl", encodeVifctl(Buffer.alloc(VIFCTL_SIZE), V.vif), VIFCTL_SIZE);
    same("mfcctl", encodeMfcctl(Buffer.alloc(MFCCTL_SIZE), V.mfc), MFCCTL_SIZE);
    same("sioc_sg_req.in", encodeSgReq(Buffer.alloc(SIOC_SG_REQ_SIZE), V.sg.origin, V.sg.group), SIOC_SG_REQ_SIZE);
    assert.deepEqual(decodeSgReq(kernel("sioc_sg_req.out")), { packets: 0x0101010101, bytes: 0x0202020202, wrongIf: 0x0303030303 });
    same("sioc_vif_req.in", encodeVifReq(Buffer.alloc(SIOC_VIF_REQ_SIZE), V.vif.vifi), SIOC_VIF_REQ_SIZE);
    assert.deepEqual(decodeVifReq(kernel("sioc_vif_req.out")), { pktsIn: 0x11, pktsOut: 0x22, bytesIn: 0x3333333333, bytesOut: 0x4444444444 });
    assert.equal(kernel("igmpmsg").length, IGMPMSG_SIZE);
    assert.deepEqual(decodeIgmpmsg(kernel("igmpmsg"), IGMPMSG_SIZE), V.upcall4);
  });

  await t.test("group_req / group_source_req of both families", () => {
    const buf = Buffer.alloc(GROUP_SOURCE_REQ_SIZE);
    for (const [family, j] of [["4", V.join4], ["6", V.join6]] as const) {
      assert.equal(encodeGroupReq(buf, j.ifindex, j.group, null), GROUP_REQ_SIZE);
      same(`group_req${family}`, buf, GROUP_REQ_SIZE);
      assert.equal(encodeGroupReq(buf, j.ifindex, j.group, j.source), GROUP_SOURCE_REQ_SIZE);
      same(`group_source_req${family}`, buf, GROUP_SOURCE_REQ_SIZE);
    }
  });

  await t.test("IPv6: mif6ctl, mf6cctl, sioc_sg_req6, sioc_mif_req6, mrt6msg", () => {
    same("mif6ctl", encodeMif6ctl(Buffer.alloc(MIF6CTL_SIZE), V.mif), MIF6CTL_SIZE);
    same("mf6cctl", encodeMf6cctl(Buffer.alloc(MF6CCTL_SIZE), V.mf6c), MF6CCTL_SIZE);
    same("sioc_sg_req6.in", encodeSgReq6(Buffer.alloc(SIOC_SG_REQ6_SIZE), V.sg6.origin, V.sg6.group), SIOC_SG_REQ6_SIZE);
    assert.deepEqual(decodeSgReq6(kernel("sioc_sg_req6.out")), { packets: 0x0505050505, bytes: 0x0606060606, wrongIf: 7 });
    same("sioc_mif_req6.in", encodeMifReq6(Buffer.alloc(SIOC_MIF_REQ6_SIZE), V.mif.vifi), SIOC_MIF_REQ6_SIZE);
    assert.deepEqual(decodeMifReq6(kernel("sioc_mif_req6.out")), { pktsIn: 0x55, pktsOut: 0x66, bytesIn: 0x7777777777, bytesOut: 0x8888888888 });
    assert.equal(kernel("mrt6msg").length, MRT6MSG_SIZE);
    assert.deepEqual(decodeMrt6msg(kernel("mrt6msg"), MRT6MSG_SIZE), V.upcall6);
  });

  await t.test("decoders skip what is no NOCACHE upcall", () => {
    const igmp = Buffer.from(kernel("igmpmsg"));
    assert.equal(decodeIgmpmsg(igmp, IGMPMSG_SIZE - 1), undefined, "short read");
    igmp[9] = 2; // an IP header's protocol byte: a real IGMP packet
    assert.equal(decodeIgmpmsg(igmp, IGMPMSG_SIZE), undefined);
    const m6 = Buffer.from(kernel("mrt6msg"));
    assert.equal(decodeMrt6msg(m6, MRT6MSG_SIZE - 1), undefined, "short read");
    m6[1] = 2; // MRT6MSG_WRONGMIF
    assert.equal(decodeMrt6msg(m6, MRT6MSG_SIZE), undefined);
    m6[0] = 0x8f; m6[1] = 1; // an ICMPv6 message (MLDv2 report) has its type in byte 0
    assert.equal(decodeMrt6msg(m6, MRT6MSG_SIZE), undefined);
  });
});

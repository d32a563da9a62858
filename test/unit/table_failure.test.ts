/**
 * Why a table could not be taken, as the operator reads it: a kernel built without multicast
 * routing names the option it lacks (seen on a kernel with CONFIG_IP_MROUTE and
 * CONFIG_IPV6_MROUTE unset: MRT_INIT and MRT6_INIT answer ENOPROTOOPT), and only a refusal of
 * permission names capabilities.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { KernelError, errnoOf } from "../../src/kernel/errors.js";
import { IPV4 } from "../../src/kernel/mroute.js";
import { IPV6 } from "../../src/kernel/mroute6.js";
import { missingKernelOption } from "../../src/kernel/mroute_socket.js";
import { tableFailureMessage } from "../../src/daemon/table_failure.js";

const noOption = (call: string, detail: string) => new KernelError(call, errnoOf("ENOPROTOOPT"), detail);

void test("ENOPROTOOPT on MRT_INIT / MRT6_INIT names each family's kernel option, and no capability", () => {
  assert.equal(
    tableFailureMessage(noOption("MRT_INIT", missingKernelOption(IPV4, "INIT")), false),
    "cannot take the multicast routing table: MRT_INIT failed: ENOPROTOOPT (this kernel has no IPv4 multicast routing: it was built without CONFIG_IP_MROUTE)",
  );
  assert.equal(
    missingKernelOption(IPV6, "INIT"),
    "this kernel has no IPv6 multicast routing: it was built without CONFIG_IPV6_MROUTE",
  );
});

void test("ENOPROTOOPT on MRT_TABLE names the multiple-tables option and says to leave 'table' empty", () => {
  const message = tableFailureMessage(noOption("MRT_TABLE", missingKernelOption(IPV4, "TABLE")), true);
  assert.equal(
    message,
    "cannot take the multicast routing table: MRT_TABLE failed: ENOPROTOOPT (this kernel takes no IPv4 multicast routing table " +
      "but the default: it was built without CONFIG_IP_MROUTE_MULTIPLE_TABLES (or CONFIG_IP_MROUTE); leave 'table' empty)",
  );
  assert.match(missingKernelOption(IPV6, "TABLE"), /without CONFIG_IPV6_MROUTE_MULTIPLE_TABLES \(or CONFIG_IPV6_MROUTE\)/);
});

void test("a refusal of permission names the capabilities: CAP_NET_ADMIN too when a table is configured", () => {
  assert.equal(
    tableFailureMessage(new KernelError("MRT_INIT", errnoOf("EACCES")), false),
    "cannot take the multicast routing table: MRT_INIT failed: EACCES (needs CAP_NET_RAW)",
  );
  assert.equal(
    tableFailureMessage(new KernelError("MRT_TABLE", errnoOf("EPERM")), true),
    "cannot take the multicast routing table: MRT_TABLE failed: EPERM (needs CAP_NET_RAW and CAP_NET_ADMIN)",
  );
});

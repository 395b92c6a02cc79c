/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * parkvisor's guest-visible ABI (docs/abi.md).
 *
 * GENERATED from hypervisor/abi/src/lib.rs (crate parkvisor-abi): do not
 * edit. Regenerate with
 *   PARKVISOR_ABI_WRITE_HEADER=1 cargo test -p parkvisor-abi
 * The same test, run by scripts/test.sh's host-unit-tests step, fails when
 * this file is stale.
 */
#ifndef PARKVISOR_ABI_H
#define PARKVISOR_ABI_H

/* Vendor hypervisor service function IDs (SMCCC owner 6) */
#define PV_CALL_UID			0x8600FF01U	/* service UUID in x0..x3 */
#define PV_FEATURES			0x86000000U	/* bitmap of implemented functions */
#define PV_FAST_STOP			0xC6000001U	/* stop every other vCPU */
#define PV_VCPU_STATE			0xC6000002U	/* power state of one vCPU */
#define PV_TRACE_MARK			0x86000003U	/* print a mark trace line */
#define PV_FAST_STOP_FLAGS		0x86000004U	/* accepted FAST_STOP flags */

/* CALL_UID's x0..x3: UUID f98411cd-4dea-4c9d-973e-208eee288f9b */
#define PV_UID0				0xCD1184F9U
#define PV_UID1				0x9D4CEA4DU
#define PV_UID2				0x8E203E97U
#define PV_UID3				0x9B8F28EEU

/* FEATURES bits: bit n = function number n is implemented */
#define PV_FEAT_FEATURES		0x1ULL
#define PV_FEAT_FAST_STOP		0x2ULL
#define PV_FEAT_VCPU_STATE		0x4ULL
#define PV_FEAT_TRACE_MARK		0x8ULL
#define PV_FEAT_FAST_STOP_FLAGS		0x10ULL

/* FAST_STOP: flags (x2) and the deadline when x1 = 0 */
#define PV_STOP_SAVE_REGS		0x1ULL	/* save area at x3, size x4 */
#define PV_STOP_SAVE_SP_EL0		0x2ULL	/* with SAVE_REGS: SP_EL0 too */
#define PV_STOP_DEFAULT_TIMEOUT_US	1000000

/* VCPU_STATE answers */
#define PV_VCPU_ON			0
#define PV_VCPU_OFF			1
#define PV_VCPU_ON_PENDING		2

/* Return codes (x0, int32) */
#define PV_RET_SUCCESS			0
#define PV_RET_NOT_SUPPORTED		(-1)
#define PV_RET_INVALID_PARAMETERS	(-2)
#define PV_RET_DENIED			(-3)	/* FAST_STOP: another in progress */
#define PV_RET_INTERNAL_FAILURE		(-6)	/* FAST_STOP: deadline passed */

/* One SAVE_REGS entry: byte offsets, sizes, status values */
#define PV_SAVE_MPIDR_OFFSET		0
#define PV_SAVE_STATUS_OFFSET		8
#define PV_SAVE_REGS_OFFSET		16	/* struct user_pt_regs */
#define PV_SAVE_SP_EL0_OFFSET		288	/* with SAVE_SP_EL0 */
#define PV_SAVE_ENTRY_BYTES		288
#define PV_SAVE_ENTRY_BYTES_SP_EL0	296
#define PV_SAVE_STATUS_EMPTY		0
#define PV_SAVE_STATUS_SAVED		1

/* PSCI 1.3 SYSTEM_OFF2, as parkvisor implements it */
#define PV_PSCI_SYSTEM_OFF2_32		0x84000015U
#define PV_PSCI_SYSTEM_OFF2_64		0xC4000015U
#define PV_PSCI_OFF_TYPE_HIBERNATE_OFF	1

#endif /* PARKVISOR_ABI_H */

//! What happens when the guest traps to EL2: decode ESR_EL2, handle the
//! exception, and before returning check whether a fast-stop wants this vCPU.
//! Handlers return an [`Exit`]; only `handle_lower` parks.
//! Anything the guest does that parkvisor does not emulate is contained: the
//! guest gets an exception, the trace says what happened, EL2 carries on.

use super::park;
use super::vectors::{GuestFrame, LowerKind};
use super::{HV_REGION, cpu_index, el2, emit_here, gic_mmio, hv, hypercall, vgic};
use crate::esr::{
    self, EC_DABT_LOWER, EC_DABT_SAME, EC_IABT_LOWER, EC_IABT_SAME, EC_UNKNOWN, Trap,
};
use crate::exception;
use crate::mmio;
use crate::park::{Exit, ParkReason};
use crate::trace::Event;
use arm_sysregs::el1::registers::EsrEl1;
use arm_sysregs::el2::registers::EsrEl2;
use arm_sysregs::types::{EsrIssSysreg, EsrIssSysregDir, EsrIssSysregId};

/// Fault status "synchronous external abort, not on a table walk".
const FSC_EXTERNAL_ABORT: u32 = 0x10;

/// Entry from the vectors for every exception taken from the guest.
/// It either returns (the vectors restore `frame` and ERET) or parks the
/// vCPU, whose next life then starts on a fresh stack.
pub extern "C" fn handle_lower(frame: &mut GuestFrame, kind: u64) {
    let handled = match kind {
        k if k == LowerKind::Sync as u64 => synchronous(frame),
        k if k == LowerKind::Irq as u64 || k == LowerKind::Fiq as u64 => {
            interrupt();
            Exit::Resume
        }
        k if k == LowerKind::SError as u64 => {
            serror(frame);
            Exit::Resume
        }
        // The vector table passes only the four kinds above.
        _ => Exit::Resume,
    };
    // FAST_STOP's SGI may be pending, or the stop may have started while
    // this CPU was at EL2: either way the vCPU parks instead of re-entering.
    let me = cpu_index();
    match park::parker(me).trap_exit(handled) {
        Exit::Resume => vgic::flush(me),
        Exit::Park(reason) => park::park(me, reason, frame),
    }
}

/// A physical SError taken while the guest ran (HCR_EL2.AMO) is the guest's:
/// traced, then handed back to it as a virtual SError with the same
/// syndrome, which it takes when its PSTATE.A allows. EL2 carries on.
fn serror(frame: &GuestFrame) {
    let esr = el2::esr();
    emit_here(&Event::Fault {
        kind: "serror",
        addr: esr,
        pc: frame.elr,
        write: false,
        size: 0,
        why: "asynchronous abort from the guest",
        action: "virtual SError injected",
    });
    el2::inject_serror(esr);
}

/// An exception taken at EL2 is a hypervisor bug: report it and stop.
pub extern "C" fn handle_current(frame: &mut GuestFrame, kind: u64) {
    panic!(
        "exception at EL2 (kind {kind}): ESR {:#x} ELR {:#x} FAR {:#x}",
        el2::esr(),
        frame.elr,
        el2::far()
    );
}

fn synchronous(frame: &mut GuestFrame) -> Exit {
    let esr = el2::esr();
    match Trap::decode(esr) {
        Trap::Hvc { imm } => hypercall::handle(frame, imm),
        Trap::Smc { imm } => {
            // A trapped SMC returns to the SMC itself: step over it first, so
            // whatever the call does with the frame starts from the next PC.
            skip_instruction(frame, esr);
            hypercall::handle(frame, imm)
        }
        Trap::DataAbort => data_abort(frame, esr),
        Trap::InstructionAbort => {
            let ipa = el2::fault_ipa();
            let fault = Fault {
                kind: "iabt",
                addr: ipa,
                write: false,
                size: 0,
                why: classify(ipa),
            };
            contain(frame, fault, EC_IABT_SAME, FSC_EXTERNAL_ABORT)
        }
        Trap::SystemRegister => system_register(frame, esr),
        Trap::Other(ec) => {
            let why = "exception class not handled";
            contain(
                frame,
                Fault {
                    kind: "undef",
                    addr: ec.into(),
                    write: false,
                    size: 0,
                    why,
                },
                EC_UNKNOWN,
                0,
            )
        }
    }
}

/// The guest's IPIs: writes to ICC_SGI1R_EL1, ICC_ASGI1R_EL1 and
/// ICC_SGI0R_EL1 (op0=3, op1=0, CRn=12, CRm=11, op2=5/6/7). Other trapped
/// registers are refused.
fn system_register(frame: &mut GuestFrame, esr: u64) -> Exit {
    let Some(iss) = EsrEl2::from_bits_retain(esr).iss_sysreg() else {
        // Not reachable for EC 0x18, but an unexpected syndrome is the
        // guest's problem, never a reason to stop EL2.
        let fault = Fault {
            kind: "sysreg",
            addr: esr,
            write: false,
            size: 0,
            why: "no system register syndrome",
        };
        return contain(frame, fault, EC_UNKNOWN, 0);
    };
    let is_sgi = (5..=7).any(|op2| iss.sysreg_id() == EsrIssSysregId::new(3, 0, 12, 11, op2));
    if is_sgi && iss.dir() == EsrIssSysregDir::Write {
        // Only ICC_SGI1R_EL1 (op2 5) makes an SGI: the guest's SGIs are all
        // Group 1 of its own Security state, so ICC_SGI0R_EL1 (Group 0)
        // and ICC_ASGI1R_EL1 (Group 1 of the other Security state) target
        // none of them (written, ignored).
        if iss.sysreg_id() == EsrIssSysregId::new(3, 0, 12, 11, 5) {
            let rt = usize::from(iss.rt());
            let value = if rt == usize::from(EsrIssSysreg::XZR_REG_NUM) {
                0
            } else {
                frame.x.get(rt).copied().unwrap_or(0)
            };
            vgic::send_sgi(cpu_index(), value);
        }
        skip_instruction(frame, esr);
        return Exit::Resume;
    }
    let scxtnum_el1 = iss.sysreg_id() == EsrIssSysregId::new(3, 0, 13, 0, 7);
    let scxtnum_el0 = iss.sysreg_id() == EsrIssSysregId::new(3, 3, 13, 0, 7);
    if scxtnum_el1 || scxtnum_el0 {
        // FEAT_CSV2_2's context numbers, which the ID registers advertise:
        // HCR_EL2.EnSCXT is set where the CPU has them, but an emulator
        // may trap them on SCTLR_EL2.TSCXT (RES1 with E2H = 0) as well.
        // They are the guest's: done on the real register at EL2.
        let rt = usize::from(iss.rt());
        let write = iss.dir() == EsrIssSysregDir::Write;
        // x31 is XZR here; `frame.x` has x0..x30 only, so `get` covers it.
        let value = frame.x.get(rt).copied().unwrap_or(0);
        let read = el2::scxtnum(scxtnum_el0, write.then_some(value));
        if let (false, Some(x)) = (write, frame.x.get_mut(rt)) {
            *x = read;
        }
        skip_instruction(frame, esr);
        return Exit::Resume;
    }
    let why = "system register not emulated";
    let write = iss.dir() == EsrIssSysregDir::Write;
    let fault = Fault {
        kind: "sysreg",
        addr: u64::from(iss.bits()),
        write,
        size: 8,
        why,
    };
    contain(frame, fault, EC_UNKNOWN, 0)
}

/// The trapped instruction was emulated: the guest continues after it
/// (PC, single-step state, BTYPE, IT state; see `exception::skip_instruction`).
fn skip_instruction(frame: &mut GuestFrame, esr: u64) {
    (frame.elr, frame.spsr) = exception::skip_instruction(frame.elr, frame.spsr, esr);
}

/// AArch32 register 15 is the PC, not x15: an access that names it is not
/// emulated (the Arm ARM gives no valid syndrome for it either).
fn names_aarch32_pc(frame: &GuestFrame, access: &mmio::MmioAccess) -> bool {
    frame.spsr & exception::spsr::M_AARCH32 != 0 && access.reg == 15
}

/// Emulated accesses step over the trapped instruction by its length
/// (ESR_EL2.IL: 2 for a 16-bit Thumb instruction of AArch32 EL0).
fn data_abort(frame: &mut GuestFrame, esr: u64) -> Exit {
    let hv = hv();
    match mmio::decode(esr, el2::far(), el2::hpfar()) {
        Ok(access) if names_aarch32_pc(frame, &access) => {
            refuse_access(frame, esr, &access, "AArch32 access naming the PC")
        }
        Ok(access) if gic_mmio::owns(access.ipa) => {
            gic_mmio::access(&access, &mut frame.x);
            skip_instruction(frame, esr);
            Exit::Resume
        }
        Ok(access) if hv.uart.contains(access.ipa) => {
            let offset = (access.ipa - hv.uart.base) as usize;
            if access.write {
                let value = access.store_value_from(&frame.x) as u32;
                super::console_access(offset, Some(value));
            } else {
                let value = super::console_access(offset, None);
                access.apply_load(&mut frame.x, value.into());
            }
            skip_instruction(frame, esr);
            Exit::Resume
        }
        Ok(access) => refuse_access(frame, esr, &access, classify(access.ipa)),
        Err(e) => {
            let fault = Fault {
                kind: "dabt",
                addr: e.ipa.unwrap_or(0),
                write: e.write,
                size: e.size,
                why: e.kind.why(),
            };
            contain(
                frame,
                fault,
                EC_DABT_SAME,
                FSC_EXTERNAL_ABORT | esr::iss(esr) & esr::ISS_WNR,
            )
        }
    }
}

/// Contains a guest data access parkvisor will not perform: traced, and an
/// external abort for the guest.
fn refuse_access(frame: &mut GuestFrame, esr: u64, access: &mmio::MmioAccess, why: &str) -> Exit {
    let fault = Fault {
        kind: "dabt",
        addr: access.ipa,
        write: access.write,
        size: access.size,
        why,
    };
    contain(
        frame,
        fault,
        EC_DABT_SAME,
        FSC_EXTERNAL_ABORT | esr::iss(esr) & esr::ISS_WNR,
    )
}

/// Why a guest access to `ipa` has no backing.
fn classify(ipa: u64) -> &'static str {
    if HV_REGION.contains(ipa) {
        "hypervisor memory"
    } else {
        "no guest memory or device there"
    }
}

/// What the guest did that parkvisor will not do for it.
struct Fault<'a> {
    kind: &'a str,
    addr: u64,
    write: bool,
    size: u8,
    why: &'a str,
}

/// Traces a guest fault and hands it back to the guest as an exception, or,
/// when the faulting instruction is inside the guest's own exception vectors
/// (so it could never get out of the loop), stops the vCPU instead.
fn contain(frame: &mut GuestFrame, fault: Fault<'_>, same_el_ec: u8, iss: u32) -> Exit {
    let in_own_vectors = frame.elr.wrapping_sub(el2::guest_vbar()) < 0x800;
    let action = if in_own_vectors {
        "vcpu stopped (fault inside its own vectors)"
    } else {
        "abort injected"
    };
    emit_here(&Event::Fault {
        kind: fault.kind,
        addr: fault.addr,
        pc: frame.elr,
        write: fault.write,
        size: fault.size,
        why: fault.why,
        action,
    });
    if in_own_vectors {
        Exit::Park(ParkReason::Fault)
    } else {
        inject(frame, same_el_ec, iss, el2::far());
        Exit::Resume
    }
}

/// Delivers a synchronous exception to the guest's EL1 vectors. `same_el_ec`
/// is the class as seen from EL1; it becomes the "lower EL" class when the
/// guest was at EL0.
fn inject(frame: &mut GuestFrame, same_el_ec: u8, iss: u32, far: u64) {
    let from_el0 = exception::from_el0(frame.spsr);
    let ec = match same_el_ec {
        EC_DABT_SAME if from_el0 => EC_DABT_LOWER,
        EC_IABT_SAME if from_el0 => EC_IABT_LOWER,
        ec => ec,
    };
    // IL is 1, as the Arm ARM requires for an instruction abort, a data
    // abort without a valid syndrome and an unknown reason.
    let esr = EsrEl1::empty().with_ec(ec).with_iss(iss) | EsrEl1::IL;
    el2::inject_sync(frame, esr.bits(), far);
}

/// A physical interrupt arrived while the guest ran: the hypervisor's own
/// SGIs and the maintenance interrupt are handled here (their work happens
/// at trap exit: stop check, list register flush); everything else is the
/// guest's and goes into a list register, hardware-linked.
fn interrupt() {
    let cpu = cpu_index();
    vgic::take_interrupts(|intid| vgic::inject_hw(cpu, intid));
}

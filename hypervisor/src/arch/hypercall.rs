//! Guest calls (HVC #0, or SMC #0 trapped by HCR_EL2.TSC): PSCI, SMCCC arch
//! calls and parkvisor's vendor service. Decoding is `smccc`, PSCI rules are
//! `psci`, the stop protocol is `fast_stop`; this module acts on them.

use super::vectors::GuestFrame;
use super::{cpu_index, el2, emit, emit_here, firmware, gic, hv, stop_save, timer};
use crate::fast_stop::StopPlatform;
use crate::park::{Exit, ParkReason};
use crate::psci::{self, CpuOnPlatform, Suspend};
use crate::smccc::vendor::FastStopFlags;
use crate::smccc::{self, ArchCall, Call, PsciCall, VendorCall, ret, vendor};
use crate::stop_context::SaveArea;
use crate::trace::{Event, Reason};
use crate::vcpu::{BootRequest, PowerState};

/// How a call answers.
enum Reply {
    /// x0 only; x1..x3 keep the caller's values.
    One(i64),
    /// x0..x3.
    Four([u64; 4]),
    /// The frame was replaced (the vCPU restarted); nothing to write.
    Replaced,
    /// SUCCESS, and the vCPU leaves the guest: nothing to write.
    Park(ParkReason),
}

/// Handles the call in `frame` (x0 = function ID). `imm` is the HVC/SMC
/// immediate: SMCCC uses 0, anything else is not a call parkvisor knows.
/// The call's trace line is printed before the vCPU parks for it.
pub fn handle(frame: &mut GuestFrame, imm: u16) -> Exit {
    let entry_ns = timer::now_ns();
    let call = smccc::decode_regs(&[frame.x[0], frame.x[1], frame.x[2], frame.x[3], frame.x[4]]);
    let reply = if imm != 0 {
        Reply::One(ret::NOT_SUPPORTED)
    } else {
        match call {
            Call::Psci(p) => psci_call(frame, p),
            Call::Arch(a) => Reply::One(arch_call(a)),
            Call::Vendor(v) => vendor_call(v, entry_ns),
            Call::Unknown(_) => Reply::One(ret::NOT_SUPPORTED),
        }
    };
    let (x0, exit) = match reply {
        Reply::One(x0) => {
            frame.x[0] = x0 as u64;
            (x0, Exit::Resume)
        }
        Reply::Four(regs) => {
            frame.x[..4].copy_from_slice(&regs);
            (regs[0] as i64, Exit::Resume)
        }
        Reply::Replaced => (ret::SUCCESS, Exit::Resume),
        Reply::Park(reason) => (ret::SUCCESS, Exit::Park(reason)),
    };
    emit_here(&Event::call(&call, x0));
    exit
}

fn psci_call(frame: &mut GuestFrame, call: PsciCall) -> Reply {
    let hv = hv();
    let me = cpu_index();
    let table = hv.table();
    let ram = |addr| hv.is_guest_ram(addr);
    match call {
        PsciCall::Version => Reply::One(psci::VERSION as i64),
        PsciCall::Features { function_id } => Reply::One(psci::features(function_id)),
        PsciCall::CpuSuspend {
            power_state,
            entry,
            context_id,
            ..
        } => {
            let big_endian = el2::guest_big_endian();
            match psci::suspend(power_state.into(), entry, context_id, big_endian, ram) {
                // A standby that wakes at once is a valid standby.
                Ok(Suspend::Standby) => Reply::One(ret::SUCCESS),
                Ok(Suspend::Powerdown(request)) => {
                    el2::reset_guest_el1(request.big_endian);
                    *frame = GuestFrame::cold_boot(request.entry, request.context_id);
                    Reply::Replaced
                }
                Err(e) => Reply::One(e),
            }
        }
        PsciCall::CpuOff => Reply::Park(ParkReason::CpuOff),
        PsciCall::CpuOn {
            target_mpidr,
            entry,
            context_id,
            ..
        } => {
            let request = BootRequest {
                entry,
                context_id,
                big_endian: el2::guest_big_endian(),
            };
            let caller = CpuOnCaller { me };
            match psci::cpu_on(&table, &hv.live, target_mpidr, request, ram, &caller) {
                Ok(_) => Reply::One(ret::SUCCESS),
                Err(e) => Reply::One(e),
            }
        }
        PsciCall::AffinityInfo {
            target_affinity,
            lowest_level,
            ..
        } => Reply::One(psci::affinity_info(
            &table,
            target_affinity,
            lowest_level.into(),
        )),
        PsciCall::MigrateInfoType => Reply::One(psci::MIGRATE_INFO_TYPE_NONE as i64),
        PsciCall::SystemOff => {
            emit_here(&Event::call(&Call::Psci(call), 0));
            emit_here(&Event::SystemOff);
            firmware::system_off()
        }
        PsciCall::SystemReset => {
            emit_here(&Event::call(&Call::Psci(call), 0));
            emit_here(&Event::SystemReset);
            firmware::system_reset()
        }
        PsciCall::SystemOff2 {
            off_type, cookie, ..
        } => match psci::system_off2(off_type, cookie) {
            Ok(()) => {
                emit_here(&Event::call(&Call::Psci(call), 0));
                emit_here(&Event::SystemOff);
                firmware::system_off()
            }
            Err(e) => Reply::One(e),
        },
        PsciCall::SystemReset2 { reset_type, .. } => match psci::system_reset2(reset_type.into()) {
            Ok(()) => {
                emit_here(&Event::call(&Call::Psci(call), 0));
                emit_here(&Event::SystemReset);
                firmware::system_reset()
            }
            Err(e) => Reply::One(e),
        },
        PsciCall::Unimplemented(_) => Reply::One(ret::NOT_SUPPORTED),
    }
}

/// CPU_ON's machine: vCPU `me` called it.
struct CpuOnCaller {
    me: usize,
}

impl CpuOnPlatform for CpuOnCaller {
    /// Traced on the target's ring while it cannot start yet, so the line
    /// precedes anything the target prints.
    fn claimed(&self, target: usize) {
        let event = Event::State {
            from: PowerState::Off,
            to: PowerState::OnPending,
            reason: Reason::CpuOnBy(self.me),
        };
        emit(target, &event);
    }
    fn kick(&self, target: usize) {
        gic::kick(target);
    }
}

/// SMCCC 1.1 architecture calls.
fn arch_call(call: ArchCall) -> i64 {
    match call {
        ArchCall::Version => smccc::VERSION as i64,
        ArchCall::Features { function_id } => match function_id {
            smccc::SMCCC_VERSION | smccc::SMCCC_ARCH_FEATURES => ret::SUCCESS,
            // No Spectre workaround calls and no SoC ID: NOT_SUPPORTED.
            _ => ret::NOT_SUPPORTED,
        },
        ArchCall::SocId { .. } | ArchCall::Workaround(_) => ret::NOT_SUPPORTED,
    }
}

struct Machine;

impl StopPlatform for Machine {
    fn now_ns(&self) -> u64 {
        timer::now_ns()
    }
    fn broadcast_stop_sgi(&self) {
        gic::broadcast_stop();
    }
    fn relax(&self) {
        el2::wait_for_event();
    }
}

fn vendor_call(call: VendorCall, entry_ns: u64) -> Reply {
    let hv = hv();
    match call {
        VendorCall::CallUid => Reply::Four(vendor::UID.map(u64::from)),
        VendorCall::Features => Reply::One(vendor::Features::all().bits() as i64),
        VendorCall::FastStop {
            timeout_us,
            flags,
            save_area,
            save_len,
        } => {
            // The save area is checked before anything stops, so a bad one
            // leaves every vCPU running.
            let save = if flags & FastStopFlags::SAVE_REGS.bits() == 0 {
                None
            } else {
                let with_sp_el0 = flags & FastStopFlags::SAVE_SP_EL0.bits() != 0;
                match SaveArea::validate(
                    save_area,
                    save_len,
                    hv.vcpus.len(),
                    with_sp_el0,
                    &hv.guest_ram,
                ) {
                    Ok(area) => Some(area),
                    Err(e) => return Reply::One(e),
                }
            };
            emit_here(&Event::FastStopBegin {
                timeout_us: VendorCall::fast_stop_timeout_us(timeout_us),
            });
            let report = hv.fast_stop.run(
                &hv.table(),
                cpu_index(),
                timeout_us,
                flags,
                entry_ns,
                &Machine,
            );
            if let (Some(area), true) = (save, report.generation != 0) {
                stop_save::copy_to_guest(&area, report.generation);
            }
            emit_here(&Event::FastStopEnd {
                result: report.result,
                stopped: report.stopped,
                unconfirmed: report.unconfirmed,
                elapsed_ns: report.elapsed_ns,
            });
            Reply::Four(report.registers())
        }
        VendorCall::VcpuState { target_mpidr } => {
            let table = hv.table();
            Reply::One(match table.index_of(target_mpidr) {
                Some(i) if target_mpidr & !crate::vcpu::MPIDR_AFF_MASK == 0 => {
                    table.slot(i).state().affinity_info() as i64
                }
                _ => ret::INVALID_PARAMETERS,
            })
        }
        VendorCall::FastStopFlags => Reply::One(FastStopFlags::all().bits() as i64),
        VendorCall::TraceMark { value } => {
            emit_here(&Event::Mark { value });
            Reply::One(ret::SUCCESS)
        }
    }
}

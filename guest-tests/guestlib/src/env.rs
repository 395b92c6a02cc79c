//! What a guest learns from its device tree: boot options, the CPU list
//! (MPIDRs, in `/cpus` order = linear vCPU index), RAM, GIC and UART.

use crate::options::Options;
use dtoolkit::FdtStringListIterator;
use dtoolkit::fdt::{Fdt, FdtNode};
use dtoolkit::standard::Reg;
use dtoolkit::{Node, Property, ToCellInt};

/// Most CPUs a guest handles (slots, stacks).
pub const MAX_CPUS: usize = 64;
/// Most RAM ranges remembered.
pub const MAX_MEM: usize = 4;
const BOOTARGS_CAP: usize = 512;
/// Most `ranges` entries of a bus that are followed.
const MAX_RANGES: usize = 8;

/// Which machine the DTB describes (its root `compatible`): for the few
/// facts a device tree does not give, such as where the devices withheld
/// from the guest would be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// QEMU `virt` (`linux,dummy-virt`).
    QemuVirt,
    /// A BCM2711: Raspberry Pi 4 B, QEMU `raspi4b` (`brcm,bcm2711`).
    Bcm2711,
    Other,
}

/// Facts about the machine, parsed once on the boot CPU.
#[derive(Clone, Debug)]
pub struct Env {
    /// Where the DTB was.
    pub dtb: u64,
    bootargs: [u8; BOOTARGS_CAP],
    bootargs_len: usize,
    /// MPIDR affinity values (Aff3..Aff0) of the CPUs, by linear index.
    pub cpus: [u64; MAX_CPUS],
    pub ncpus: usize,
    /// More CPUs were listed than [`MAX_CPUS`].
    pub cpus_truncated: bool,
    /// Linear index of the boot CPU (set by the runtime from MPIDR_EL1).
    pub boot_idx: usize,
    /// RAM ranges `(base, size)` from the `/memory` nodes.
    pub mem: [(u64, u64); MAX_MEM],
    pub nmem: usize,
    /// GIC distributor base, and the GICv3 redistributors' (0 when not
    /// found).
    pub gicd: u64,
    pub gicr: u64,
    /// GICv2 CPU interface base (0 unless the GIC is a GICv2).
    pub gicc: u64,
    /// The sizes of the GICD and GICv2 GICC frames the DTB gives (a
    /// GIC-400's are 4 KiB and 8 KiB, QEMU virt's 64 KiB each).
    pub gicd_size: u64,
    pub gicc_size: u64,
    /// `/psci` `method` property (`hvc` or `smc`), if any.
    pub psci_smc: bool,
    /// The first enabled PL011 (the console), 0 when there is none.
    pub uart: u64,
    pub machine: Machine,
}

/// Why a device tree could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvError {
    NoCpus,
    BadCpuReg,
    NoMemory,
}

impl Env {
    /// Whether the GIC is a GICv2 (distributor and memory-mapped CPU
    /// interface, SGIs through GICD_SGIR).
    pub fn is_gicv2(&self) -> bool {
        self.gicc != 0
    }

    /// An empty environment (no CPUs, no RAM).
    pub const fn empty() -> Self {
        Self {
            dtb: 0,
            bootargs: [0; BOOTARGS_CAP],
            bootargs_len: 0,
            cpus: [0; MAX_CPUS],
            ncpus: 0,
            cpus_truncated: false,
            boot_idx: 0,
            mem: [(0, 0); MAX_MEM],
            nmem: 0,
            gicd: 0,
            gicr: 0,
            gicc: 0,
            gicd_size: 0,
            gicc_size: 0,
            psci_smc: false,
            uart: 0,
            machine: Machine::Other,
        }
    }

    /// Reads everything from a parsed device tree.
    pub fn from_fdt(fdt: Fdt<'_>, dtb_addr: u64) -> Result<Self, EnvError> {
        let mut env = Self::empty();
        env.dtb = dtb_addr;

        if let Some(chosen) = fdt.chosen()
            && let Ok(Some(args)) = chosen.bootargs()
        {
            env.set_bootargs(args);
        }

        if has_compatible(&fdt.root(), "linux,dummy-virt") {
            env.machine = Machine::QemuVirt;
        } else if has_compatible(&fdt.root(), "brcm,bcm2711") {
            env.machine = Machine::Bcm2711;
        }

        let cpus = fdt.cpus().map_err(|_| EnvError::NoCpus)?;
        for cpu in cpus.cpus() {
            if let Some(status) = cpu.property("status")
                && let Ok(s) = status.value_as::<&str>()
                && s != "okay"
                && s != "ok"
            {
                continue;
            }
            let mut ids = cpu.ids().map_err(|_| EnvError::BadCpuReg)?;
            let id: u64 = ids
                .next()
                .ok_or(EnvError::BadCpuReg)?
                .to_int()
                .map_err(|_| EnvError::BadCpuReg)?;
            if env.ncpus == MAX_CPUS {
                env.cpus_truncated = true;
                break;
            }
            env.cpus[env.ncpus] = id;
            env.ncpus += 1;
        }
        if env.ncpus == 0 {
            return Err(EnvError::NoCpus);
        }
        // Linear vCPU index = position in ascending MPIDR order, whatever
        // order the tree lists the nodes in.
        env.cpus[..env.ncpus].sort_unstable();

        for node in fdt.root().children() {
            let name = node.name_without_address();
            let is_memory = node
                .property("device_type")
                .and_then(|p| p.value_as::<&str>().ok())
                .is_some_and(|t| t == "memory")
                || name == "memory";
            if is_memory {
                if let Ok(Some(regs)) = node.reg() {
                    for reg in regs {
                        if env.nmem < MAX_MEM
                            && let Some(r) = reg_pair(reg)
                            && r.1 > 0
                        {
                            env.mem[env.nmem] = r;
                            env.nmem += 1;
                        }
                    }
                }
                continue;
            }
            env.scan_device(&node, &[]);
            // One level of simple buses (a Raspberry Pi's GIC and UART sit in
            // /soc, behind its `ranges`).
            if let Ok(Some(ranges)) = node.ranges() {
                let mut map = [(0u64, 0u64, 0u64); MAX_RANGES];
                let mut n = 0;
                for r in ranges {
                    if n < MAX_RANGES
                        && let (Ok(c), Ok(p), Ok(l)) = (
                            r.child_bus_address::<u64>(),
                            r.parent_bus_address::<u64>(),
                            r.length::<u64>(),
                        )
                    {
                        map[n] = (c, p, l);
                        n += 1;
                    }
                }
                for child in node.children() {
                    env.scan_device(&child, &map[..n]);
                }
            }
            if name == "psci" {
                env.psci_smc = node
                    .property("method")
                    .and_then(|p| p.value_as::<&str>().ok())
                    .is_some_and(|m| m == "smc");
            }
        }
        if env.nmem == 0 {
            return Err(EnvError::NoMemory);
        }
        Ok(env)
    }

    /// Takes the GIC and the console UART from `node`, its addresses
    /// translated through its bus's `ranges` (`(child, parent, length)`;
    /// none: the same address space).
    fn scan_device(&mut self, node: &FdtNode<'_>, ranges: &[(u64, u64, u64)]) {
        let disabled = node
            .property("status")
            .and_then(|p| p.value_as::<&str>().ok())
            .is_some_and(|s| s != "okay" && s != "ok");
        if disabled {
            return;
        }
        let mut addrs = [0u64; 2];
        let mut sizes = [0u64; 2];
        let mut n = 0;
        let regs = node.reg().ok().flatten().into_iter().flatten();
        for (a, size) in regs.filter_map(reg_pair) {
            if n < addrs.len()
                && let Some(a) = translate(a, ranges)
            {
                addrs[n] = a;
                sizes[n] = size;
                n += 1;
            }
        }
        if n == 0 {
            return;
        }
        if has_compatible(node, "arm,gic-v3") {
            self.gicd = addrs[0];
            self.gicd_size = sizes[0];
            self.gicr = if n > 1 { addrs[1] } else { 0 };
        }
        if has_compatible(node, "arm,cortex-a15-gic") || has_compatible(node, "arm,gic-400") {
            self.gicd = addrs[0];
            self.gicd_size = sizes[0];
            (self.gicc, self.gicc_size) = if n > 1 { (addrs[1], sizes[1]) } else { (0, 0) };
        }
        if has_compatible(node, "arm,pl011") && self.uart == 0 {
            self.uart = addrs[0];
        }
    }

    fn set_bootargs(&mut self, args: &str) {
        let mut n = args.len().min(BOOTARGS_CAP);
        while !args.is_char_boundary(n) {
            n -= 1;
        }
        self.bootargs[..n].copy_from_slice(&args.as_bytes()[..n]);
        self.bootargs_len = n;
    }

    pub fn bootargs(&self) -> &str {
        core::str::from_utf8(&self.bootargs[..self.bootargs_len]).unwrap_or("")
    }

    pub fn opts(&self) -> Options<'_> {
        Options::parse(self.bootargs())
    }

    /// Linear index of the CPU with this MPIDR affinity value.
    pub fn index_of(&self, mpidr: u64) -> Option<usize> {
        let aff = crate::abi::mpidr_aff(mpidr);
        self.cpus[..self.ncpus].iter().position(|&c| c == aff)
    }

    /// MPIDR affinity of CPU `idx`.
    pub fn mpidr(&self, idx: usize) -> u64 {
        self.cpus[idx]
    }

    /// Indices of all CPUs except the boot CPU.
    pub fn secondaries(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.ncpus).filter(move |&i| i != self.boot_idx)
    }

    /// Whether `[addr, addr+len)` lies inside one RAM range.
    pub fn in_ram(&self, addr: u64, len: u64) -> bool {
        self.mem[..self.nmem]
            .iter()
            .any(|&(b, s)| addr >= b && addr.checked_add(len).is_some_and(|e| e <= b + s))
    }

    /// One past the highest RAM address.
    pub fn ram_end(&self) -> u64 {
        self.mem[..self.nmem]
            .iter()
            .map(|&(b, s)| b + s)
            .max()
            .unwrap_or(0)
    }

    /// Lowest RAM address.
    pub fn ram_start(&self) -> u64 {
        self.mem[..self.nmem]
            .iter()
            .map(|&(b, _)| b)
            .min()
            .unwrap_or(0)
    }

    /// An MPIDR affinity value that names no CPU of this machine.
    pub fn unknown_mpidr(&self) -> u64 {
        // Aff0 = 0xFE within Aff1 = 0xFE: far beyond any QEMU virt layout;
        // fall back to scanning if it happens to exist.
        let mut cand = 0xFE_FE;
        while self.index_of(cand).is_some() {
            cand += 1;
        }
        cand
    }
}

/// A CPU address for bus address `a` (identity without ranges).
fn translate(a: u64, ranges: &[(u64, u64, u64)]) -> Option<u64> {
    if ranges.is_empty() {
        return Some(a);
    }
    ranges
        .iter()
        .find(|&&(c, _, l)| a >= c && a - c < l)
        .map(|&(c, p, _)| p + (a - c))
}

fn reg_pair(reg: Reg<'_>) -> Option<(u64, u64)> {
    Some((reg.address::<u64>().ok()?, reg.size::<u64>().ok()?))
}

fn has_compatible<N: Node>(node: &N, want: &str) -> bool {
    node.property("compatible")
        .and_then(|p| p.value_as::<FdtStringListIterator<'_>>().ok())
        .is_some_and(|mut it| it.any(|c| c == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Compiled from testdata/virt4.dts with `dtc -O dtb`.
    static VIRT4: &[u8] = include_bytes!("../testdata/virt4.dtb");

    #[test]
    fn parses_qemu_like_tree() {
        let fdt = Fdt::new(VIRT4).unwrap();
        let env = Env::from_fdt(fdt, 0x4800_0000).unwrap();
        assert_eq!(env.ncpus, 4);
        assert_eq!(&env.cpus[..4], &[0, 1, 2, 3]);
        assert_eq!(env.opts().suite(), Some("cpu_on"));
        assert_eq!(env.nmem, 1);
        assert_eq!(env.mem[0], (0x4400_0000, 0x1C00_0000));
        assert_eq!(env.ram_end(), 0x6000_0000);
        assert_eq!(env.gicd, 0x0800_0000);
        assert_eq!(env.gicr, 0x080A_0000);
        assert!(!env.psci_smc);
        assert!(env.in_ram(0x4800_0000, 0x1000));
        assert!(!env.in_ram(0x4020_0000, 4));
        assert!(!env.in_ram(0x5FFF_FFFC, 8));
        assert_eq!(env.index_of(0x8000_0002), Some(2));
        assert_eq!(env.index_of(0x100), None);
        assert!(env.index_of(env.unknown_mpidr()).is_none());
        let sec: Vec<usize> = env.secondaries().collect();
        assert_eq!(sec, vec![1, 2, 3]);
        assert!(!env.is_gicv2());
        assert_eq!(env.machine, Machine::QemuVirt);
    }

    // QEMU virt gic-version=2,virtualization=on (the hypervisor's fixture,
    // hypervisor/tests/fixtures/virt-gicv2.dtb).
    static VIRT_GICV2: &[u8] = include_bytes!("../testdata/virt-gicv2.dtb");

    #[test]
    fn finds_a_gicv2() {
        let env = Env::from_fdt(Fdt::new(VIRT_GICV2).unwrap(), 0x4800_0000).unwrap();
        assert!(env.is_gicv2());
        assert_eq!(env.gicd, 0x0800_0000);
        assert_eq!(env.gicc, 0x0801_0000);
        assert_eq!((env.gicd_size, env.gicc_size), (0x1_0000, 0x1_0000));
        assert_eq!(env.gicr, 0);
        assert_eq!(env.uart, 0x0900_0000);
    }

    // testdata/raspi4b.dts: the GIC-400 and the PL011 behind /soc's ranges.
    static RASPI4B: &[u8] = include_bytes!("../testdata/raspi4b.dtb");

    #[test]
    fn translates_through_soc_ranges() {
        let env = Env::from_fdt(Fdt::new(RASPI4B).unwrap(), 0x4800_0000).unwrap();
        assert_eq!(env.ncpus, 4);
        assert!(env.is_gicv2());
        assert_eq!(env.gicd, 0xff84_1000);
        assert_eq!(env.gicc, 0xff84_2000);
        assert_eq!((env.gicd_size, env.gicc_size), (0x1000, 0x2000));
        assert_eq!(
            env.uart, 0xfe20_1000,
            "the enabled PL011, not the disabled one"
        );
        assert_eq!(env.mem[..env.nmem], [(0, 0x3c00_0000)]);
        assert_eq!(env.opts().suite(), Some("isolation"));
        assert_eq!(env.machine, Machine::Bcm2711);
    }

    #[test]
    fn bus_address_translation() {
        let r = [
            (0x7e00_0000, 0xfe00_0000, 0x180_0000),
            (0x4000_0000, 0xff80_0000, 0x80_0000),
        ];
        assert_eq!(translate(0x7e20_1000, &r), Some(0xfe20_1000));
        assert_eq!(translate(0x4004_1000, &r), Some(0xff84_1000));
        assert_eq!(translate(0x7f80_0000, &r), None, "past the first range");
        assert_eq!(translate(0x1234, &[]), Some(0x1234));
    }
}

//! A PL011 transmitter's timing at a given baud rate (`console-baud=N`):
//! every byte takes 10 bit times on the wire (start, 8 data, stop), and up
//! to 32 bytes wait in the transmit FIFO behind the one being shifted out.
//! An emulator's UART takes bytes instantly; with this model the console
//! costs what it would on hardware, so the trace design is measured honestly.
//!
//! Time is in counter ticks (`CNTPCT_EL0`); the model only remembers when the
//! wire will be idle again.

/// PL011 transmit FIFO depth.
pub const FIFO_DEPTH: u64 = 32;
/// Bits on the wire per byte (8N1).
pub const BITS_PER_BYTE: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WireModel {
    /// Ticks one byte occupies the wire (at least 1).
    byte_ticks: u64,
    /// When the last accepted byte has left the wire.
    idle_at: u64,
}

impl WireModel {
    /// The model of a UART at `baud` with a counter of `freq_hz`; `None` for
    /// a baud rate of 0 (instant, the emulator's own behaviour).
    pub fn new(baud: u64, freq_hz: u64) -> Option<Self> {
        if baud == 0 {
            return None;
        }
        let byte_ticks = (BITS_PER_BYTE as u128 * freq_hz as u128).div_ceil(baud as u128);
        Some(Self {
            byte_ticks: (byte_ticks as u64).max(1),
            idle_at: 0,
        })
    }

    pub fn byte_ticks(&self) -> u64 {
        self.byte_ticks
    }

    /// Bytes accepted and not yet completely sent at `now` (the one on the
    /// wire included).
    pub fn queued(&self, now: u64) -> u64 {
        self.idle_at.saturating_sub(now).div_ceil(self.byte_ticks)
    }

    /// Whether the FIFO has room for another byte (the PL011's TXFF clear).
    pub fn can_accept(&self, now: u64) -> bool {
        // One byte in the shift register, FIFO_DEPTH behind it.
        self.queued(now) <= FIFO_DEPTH
    }

    /// Transmit FIFO empty (TXFE): at most the byte in the shift register.
    pub fn fifo_empty(&self, now: u64) -> bool {
        self.queued(now) <= 1
    }

    /// Transmitting (BUSY).
    pub fn busy(&self, now: u64) -> bool {
        self.queued(now) > 0
    }

    /// Accepts one byte at `now` (the caller checked [`Self::can_accept`]).
    pub fn push(&mut self, now: u64) {
        self.idle_at = self.idle_at.max(now) + self.byte_ticks;
    }

    /// Ticks until the FIFO has room again (0 if it has room now).
    pub fn wait_ticks(&self, now: u64) -> u64 {
        if self.can_accept(now) {
            return 0;
        }
        // Room once at most FIFO_DEPTH bytes remain queued.
        self.idle_at - FIFO_DEPTH * self.byte_ticks - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FREQ: u64 = 62_500_000;

    #[test]
    fn a_byte_at_115200_baud_takes_ten_bit_times() {
        let w = WireModel::new(115_200, FREQ).unwrap();
        // 10 / 115200 s = 86.8 µs = 5425.3 ticks at 62.5 MHz, rounded up.
        assert_eq!(w.byte_ticks(), 5426);
        assert!(WireModel::new(0, FREQ).is_none());
    }

    #[test]
    fn the_fifo_fills_after_33_bytes_and_drains_at_the_baud_rate() {
        let mut w = WireModel::new(115_200, FREQ).unwrap();
        let t = w.byte_ticks();
        let now = 1_000_000;
        assert!(!w.busy(now) && w.fifo_empty(now));
        for _ in 0..=FIFO_DEPTH {
            assert!(w.can_accept(now));
            w.push(now);
        }
        assert!(
            !w.can_accept(now),
            "shift register and 32 FIFO entries taken"
        );
        assert!(w.busy(now) && !w.fifo_empty(now));
        let wait = w.wait_ticks(now);
        assert_eq!(wait, t, "one byte time frees one entry");
        assert!(!w.can_accept(now + wait - 1));
        assert!(w.can_accept(now + wait));
        // 33 bytes take 33 byte times.
        assert!(w.busy(now + 33 * t - 1));
        assert!(!w.busy(now + 33 * t));
    }

    #[test]
    fn an_idle_wire_starts_a_byte_at_once() {
        let mut w = WireModel::new(9600, FREQ).unwrap();
        w.push(10);
        let later = 10 + 100 * w.byte_ticks();
        w.push(later);
        assert_eq!(w.queued(later), 1);
    }
}

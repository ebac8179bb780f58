//! DM1, J1939-73's active diagnostic trouble codes (PGN 65226, 0xFECA), and
//! DM2, the previously active ones (65227, 0xFECB): the lamps, then four
//! bytes per code. One code fits a single frame; more travel by the
//! transport protocol ([`super::transport`]).
//!
//! | bytes | meaning |
//! | --- | --- |
//! | 0 | lamps, two bits each: MIL (7–6), red stop (5–4), amber warning (3–2), protect (1–0); `01` is on |
//! | 1 | the lamps' flash states |
//! | 2..6, each code | SPN (19 bits: byte 2, byte 3, the top 3 bits of byte 4), FMI (the low 5 bits of byte 4), the SPN conversion method (bit 7 of byte 5) and the occurrence count (its low 7 bits) |
//!
//! A single code of all zeros (SPN 0, FMI 0, count 0) is how a device says
//! it has none.

use serde::Serialize;

pub const PGN_DM1: u32 = 0xFECA;
pub const PGN_DM2: u32 = 0xFECB;

/// The lamps a DM1 reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lamps {
    pub mil: bool,
    pub red_stop: bool,
    pub amber_warning: bool,
    pub protect: bool,
}

/// One trouble code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dtc {
    /// Suspect parameter number.
    pub spn: u32,
    /// Failure mode identifier.
    pub fmi: u8,
    /// Occurrence count.
    pub oc: u8,
}

/// A DM1 (or DM2) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dm1 {
    pub lamps: Lamps,
    pub dtcs: Vec<Dtc>,
}

/// What a DM1's bytes say; `None` when too short to hold the lamps and a code.
pub fn parse(data: &[u8]) -> Option<Dm1> {
    if data.len() < 6 {
        return None;
    }
    let on = |shift: u8| (data[0] >> shift) & 0b11 == 0b01;
    let lamps = Lamps {
        mil: on(6),
        red_stop: on(4),
        amber_warning: on(2),
        protect: on(0),
    };
    let dtcs = data[2..]
        .chunks_exact(4)
        .map(|c| Dtc {
            spn: u32::from(c[0]) | u32::from(c[1]) << 8 | u32::from(c[2] >> 5) << 16,
            fmi: c[2] & 0x1F,
            oc: c[3] & 0x7F,
        })
        // The all-zero "none" and a frame's 0xFF padding are no codes.
        .filter(|d| {
            let none = d.spn == 0 && d.fmi == 0 && d.oc == 0;
            let padding = d.spn == 0x7_FFFF && d.fmi == 0x1F;
            !(none || padding)
        })
        .collect();
    Some(Dm1 { lamps, dtcs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lamps_and_codes_read_as_j1939_73_lays_them_out() {
        // MIL on, amber on; SPN 100 FMI 1 OC 3; SPN 520_000 (over 16 bits) FMI 31 OC 127.
        let spn2: u32 = 520_000;
        let data = [
            0b0100_0100,
            0xFF,
            100,
            0,
            1,
            3,
            spn2 as u8,
            (spn2 >> 8) as u8,
            ((spn2 >> 16) as u8) << 5 | 31,
            0x80 | 127,
        ];
        let dm1 = parse(&data).unwrap();
        assert_eq!(
            dm1.lamps,
            Lamps {
                mil: true,
                red_stop: false,
                amber_warning: true,
                protect: false
            }
        );
        assert_eq!(
            dm1.dtcs,
            [
                Dtc {
                    spn: 100,
                    fmi: 1,
                    oc: 3
                },
                Dtc {
                    spn: spn2,
                    fmi: 31,
                    oc: 127
                }
            ]
        );
        assert!(
            parse(&[0, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF]).unwrap().dtcs.is_empty(),
            "no codes"
        );
        assert!(parse(&[0, 0]).is_none());
    }
}

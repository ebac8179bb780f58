//! Checks of a built message's layout (every signal inside the message,
//! and which signals share bits) and the multiplexer relations the
//! catalog shows: both walk the finished tree, not the file.

use std::collections::BTreeSet;

use crate::format::dbc::message::Message;
use crate::format::dbc::signal::Multiplexed;

/// cantools' strict check: every signal inside the message, and no two
/// signals that can be present together sharing a bit.
/// Checks that every signal fits in the message; the overlaps found (the
/// first per signal), which strict mode rejects.
pub(super) fn check_layout(message: &Message) -> Result<Vec<String>, String> {
    let mut bits: Vec<Option<u16>> = vec![None; message.length * 8];
    let mut overlaps = Vec::new();
    check_node(message, 0, &mut bits, &mut overlaps)?;
    Ok(overlaps)
}

fn check_node(
    message: &Message,
    node: usize,
    bits: &mut [Option<u16>],
    overlaps: &mut Vec<String>,
) -> Result<(), String> {
    let node = &message.nodes[node];
    for &i in &node.signals {
        check_signal(message, i, bits, overlaps)?;
        let Some(mux) = node.muxes.iter().find(|m| m.signal == i) else {
            continue;
        };
        let before = bits.to_vec();
        let mut seen = BTreeSet::new();
        for branch in &mux.branches {
            if !seen.insert(branch.node) {
                continue;
            }
            let mut child = before.clone();
            check_node(message, branch.node as usize, &mut child, overlaps)?;
            for (slot, bit) in bits.iter_mut().zip(child) {
                if bit.is_some() {
                    *slot = bit;
                }
            }
        }
    }
    Ok(())
}

fn check_signal(
    message: &Message,
    index: u16,
    bits: &mut [Option<u16>],
    overlaps: &mut Vec<String>,
) -> Result<(), String> {
    let signal = &message.signals[usize::from(index)];
    if signal.codec.layout.end_byte() as usize > message.length {
        return Err(format!(
            "signal {} does not fit in message {}",
            signal.name, message.name
        ));
    }
    let mut overlapped = false;
    for bit in signal.codec.layout.network_bits() {
        let slot = &mut bits[bit as usize];
        if let Some(other) = *slot
            && other != index
            && !overlapped
        {
            overlapped = true;
            overlaps.push(format!(
                "signals {} and {} overlap in message {}",
                signal.name,
                message.signals[usize::from(other)].name,
                message.name
            ));
        }
        *slot = Some(index);
    }
    Ok(())
}

/// Fills in each signal's multiplexer relation for the catalog.
pub(crate) fn describe_multiplexing(message: &mut Message) {
    let mut relations: Vec<(usize, Multiplexed)> = Vec::new();
    for node in &message.nodes {
        for mux in &node.muxes {
            let mux_name = message.signals[usize::from(mux.signal)].name.clone();
            for branch in &mux.branches {
                for &s in &message.nodes[branch.node as usize].signals {
                    let s = usize::from(s);
                    match relations.iter_mut().find(|(i, _)| *i == s) {
                        Some((_, rel)) => rel.values.push((branch.lo, branch.hi)),
                        None => relations.push((
                            s,
                            Multiplexed {
                                multiplexer: mux_name.clone(),
                                values: vec![(branch.lo, branch.hi)],
                            },
                        )),
                    }
                }
            }
        }
    }
    for (i, mut rel) in relations {
        rel.values.sort_unstable();
        rel.values.dedup();
        message.signals[i].multiplexed = Some(rel);
    }
}

//! The catalog of a database's signals: each signal's sort key, its names
//! as dictionary ids and its range. Built once per writer, and shared by
//! the caller's thread (which buckets values by sort key) and the encoder's
//! (which writes the names and flags the ranges).

use crate::format::dbc::columns::ColumnDecoder;
use crate::format::dbc::{Database, ValueRange};

/// Sort keys and dictionary entries of every signal of a database.
pub(super) struct Catalog {
    /// message index → signal index → sort key.
    pub(super) keys: Vec<Vec<u32>>,
    /// message index → how its frames decode by columns, if they do.
    pub(super) columns: Vec<Option<ColumnDecoder>>,
    /// sort key → (message name id, signal name id, unit id).
    pub(super) names: Vec<(i32, i32, i32)>,
    /// sort key → the signal's DBC range, if it has one.
    pub(super) ranges: Vec<Option<ValueRange>>,
    /// The three dictionaries, by id.
    pub(super) message_names: Vec<String>,
    pub(super) signal_names: Vec<String>,
    pub(super) unit_names: Vec<String>,
}

impl Catalog {
    pub(super) fn new(db: &Database) -> Self {
        // (message index, signal index) of every signal, in (message, signal) name order.
        let messages = db.messages();
        let mut entries: Vec<(usize, usize)> = (messages.iter().enumerate())
            .flat_map(|(mi, m)| (0..m.signals.len()).map(move |si| (mi, si)))
            .collect();
        entries.sort_by(|&(ma, sa), &(mb, sb)| {
            (&messages[ma].name, &messages[ma].signals[sa].name)
                .cmp(&(&messages[mb].name, &messages[mb].signals[sb].name))
        });
        let intern = |values: &mut Vec<String>, v: &str| -> i32 {
            match values.iter().position(|x| x == v) {
                Some(i) => i as i32,
                None => {
                    values.push(v.to_string());
                    (values.len() - 1) as i32
                }
            }
        };
        let (mut message_names, mut signal_names, mut unit_names) = (Vec::new(), Vec::new(), Vec::new());
        let mut keys: Vec<Vec<u32>> = messages.iter().map(|m| vec![0; m.signals.len()]).collect();
        let mut names = Vec::with_capacity(entries.len());
        let mut ranges = Vec::with_capacity(entries.len());
        for (key, (mi, si)) in entries.into_iter().enumerate() {
            let (message, signal) = (&messages[mi], &messages[mi].signals[si]);
            keys[mi][si] = key as u32;
            ranges.push(signal.range());
            names.push((
                intern(&mut message_names, &message.name),
                intern(&mut signal_names, &signal.name),
                intern(&mut unit_names, &signal.unit),
            ));
        }
        Self {
            keys,
            columns: messages.iter().map(|m| m.columns().cloned()).collect(),
            names,
            ranges,
            message_names,
            signal_names,
            unit_names,
        }
    }
}

//! What one window holds while it fills: the values pushed frame by frame,
//! in a bucket per signal, and the frames of messages that decode by
//! columns, decoded into those buckets only when the window is full. Kept
//! apart from the writer because the same window is reused: filled on the
//! caller's thread, sorted and emptied on the encoder's.

use crate::format::dbc::columns::ColumnDecoder;

use super::catalog::Catalog;

/// The values of one signal held for the current window, in arrival order.
#[derive(Default)]
pub(super) struct Bucket {
    pub(super) ts_us: Vec<i64>,
    pub(super) values: Vec<f64>,
    /// Source addresses, one per value, for J1939 messages only (empty otherwise).
    pub(super) sources: Vec<u8>,
}

impl Bucket {
    /// An empty bucket with room for as many values as `other` holds.
    fn like(other: &Bucket) -> Self {
        Self {
            ts_us: Vec::with_capacity(other.ts_us.len()),
            values: Vec::with_capacity(other.values.len()),
            sources: Vec::with_capacity(other.sources.len()),
        }
    }

    /// Orders by time; input in time order (what the edge writes) is left as is.
    pub(super) fn sort(&mut self) {
        if self.ts_us.is_sorted() {
            return;
        }
        let mut order: Vec<u32> = (0..self.ts_us.len() as u32).collect();
        // Stable: equal timestamps keep their input order, so output is deterministic.
        order.sort_by_key(|&i| self.ts_us[i as usize]);
        self.ts_us = order.iter().map(|&i| self.ts_us[i as usize]).collect();
        self.values = order.iter().map(|&i| self.values[i as usize]).collect();
        if !self.sources.is_empty() {
            self.sources = order.iter().map(|&i| self.sources[i as usize]).collect();
        }
    }
}

/// The frames of one message held for the current window, in arrival order,
/// for a message whose frames decode by columns ([`ColumnDecoder`]): they
/// are decoded into their signals' buckets when the window is full.
#[derive(Default)]
pub(super) struct Frames {
    pub(super) ts_us: Vec<i64>,
    pub(super) words: Vec<u64>,
    /// The multiplexed group each frame selects, for multiplexed messages only (empty otherwise).
    pub(super) nodes: Vec<u32>,
    /// Source addresses, for J1939 messages only (empty otherwise).
    pub(super) sources: Vec<u8>,
}

impl Frames {
    fn like(other: &Frames) -> Self {
        Self {
            ts_us: Vec::with_capacity(other.ts_us.len()),
            words: Vec::with_capacity(other.words.len()),
            nodes: Vec::with_capacity(other.nodes.len()),
            sources: Vec::with_capacity(other.sources.len()),
        }
    }

    fn clear(&mut self) {
        self.ts_us.clear();
        self.words.clear();
        self.nodes.clear();
        self.sources.clear();
    }

    /// Decodes the frames into the buckets of their message's signals
    /// (`keys`: signal index → sort key), a signal at a time: the frames
    /// of each multiplexed group are gathered first, and decoded as the
    /// frames of a message of their own.
    fn decode_into(&self, decoder: &ColumnDecoder, keys: &[u32], buckets: &mut [Bucket]) {
        let columns = |node: usize, frames: &Frames, buckets: &mut [Bucket]| {
            for (signal, column) in decoder.signals(node) {
                let bucket = &mut buckets[keys[usize::from(signal)] as usize];
                bucket.ts_us.extend_from_slice(&frames.ts_us);
                column.decode(&frames.words, &mut bucket.values);
                bucket.sources.extend_from_slice(&frames.sources);
            }
        };
        columns(0, self, buckets);
        if self.nodes.is_empty() {
            return;
        }
        let mut groups: Vec<Frames> = (0..decoder.nodes()).map(|_| Frames::default()).collect();
        for (i, &node) in self.nodes.iter().enumerate() {
            // Only a frame read by `decoder` is here, so its node is one of
            // the decoder's; any other would have counted its root alone.
            let Some(group) = groups.get_mut(node as usize) else {
                continue;
            };
            group.ts_us.push(self.ts_us[i]);
            group.words.push(self.words[i]);
            if let Some(&address) = self.sources.get(i) {
                group.sources.push(address);
            }
        }
        for (node, group) in groups.iter().enumerate().skip(1) {
            if !group.ts_us.is_empty() {
                columns(node, group, buckets);
            }
        }
    }
}

/// What is held of one window: the values pushed frame by frame, in a
/// bucket per signal, and the frames of messages that decode by columns.
pub(super) struct Window {
    pub(super) buckets: Vec<Bucket>,
    /// By message index; empty for messages decoded frame by frame.
    pub(super) frames: Vec<Frames>,
}

impl Window {
    pub(super) fn new(catalog: &Catalog) -> Self {
        Self {
            buckets: (0..catalog.names.len()).map(|_| Bucket::default()).collect(),
            frames: (0..catalog.keys.len()).map(|_| Frames::default()).collect(),
        }
    }

    /// An empty window with room for as much as `other` holds: the next is
    /// likely alike, and vectors that grow by doubling copy what they hold.
    pub(super) fn like(other: &Window) -> Self {
        Self {
            buckets: other.buckets.iter().map(Bucket::like).collect(),
            frames: other.frames.iter().map(Frames::like).collect(),
        }
    }

    /// Decodes the held frames into the buckets, leaving the frames empty.
    pub(super) fn decode_frames(&mut self, catalog: &Catalog) {
        for (index, frames) in self.frames.iter_mut().enumerate() {
            if let (false, Some(decoder)) = (frames.ts_us.is_empty(), &catalog.columns[index]) {
                frames.decode_into(decoder, &catalog.keys[index], &mut self.buckets);
            }
            frames.clear();
        }
    }
}

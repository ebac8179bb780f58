//! The multiplexing tree of one message: which signals each value of each
//! multiplexer selects, built as cantools builds it. Its own file because
//! the tree is shared by identical subtrees and must refuse cycles.

use std::collections::{BTreeSet, HashMap};

use super::Draft;
use crate::format::dbc::message::{Branch, Mux, Node};
use crate::format::dbc::signal::{DecodeOp, Signal, ValueKind};

/// Multiplexers nested deeper than this are a cycle in the file.
const MAX_MUX_DEPTH: usize = 32;

/// Builds the multiplexing tree as cantools' `Message._create_codec` does,
/// with identical subtrees shared and selector values kept as ranges.
pub(super) struct TreeBuilder<'d> {
    drafts: &'d [Draft],
    nodes: Vec<Node>,
    memo: HashMap<Vec<u16>, u32>,
    /// Nodes whose subtree is being built: meeting one again is a cycle.
    building: Vec<bool>,
}

impl<'d> TreeBuilder<'d> {
    pub(super) fn new(drafts: &'d [Draft]) -> Self {
        Self {
            drafts,
            nodes: Vec::new(),
            memo: HashMap::new(),
            building: Vec::new(),
        }
    }

    pub(super) fn build(mut self) -> Result<Vec<Node>, String> {
        let root: Vec<u16> = (0..self.drafts.len())
            .filter(|&i| self.drafts[i].parent.is_none())
            .map(|i| i as u16)
            .collect();
        self.nodes.push(Node::default());
        self.building.push(true);
        self.fill(0, root, 0)?;
        Ok(self.nodes)
    }

    /// Children of the multiplexer named `mux` (cantools matches a parent's
    /// short name against the multiplexer's final, possibly long, name).
    fn children_of(&self, mux: &str) -> Vec<u16> {
        (0..self.drafts.len())
            .filter(|&i| self.drafts[i].parent.as_deref() == Some(mux))
            .map(|i| i as u16)
            .collect()
    }

    fn node_for(&mut self, signals: Vec<u16>, depth: usize) -> Result<u32, String> {
        if let Some(&n) = self.memo.get(&signals) {
            if self.building[n as usize] {
                return Err("a multiplexer selects itself (a cycle of multiplexers)".to_string());
            }
            return Ok(n);
        }
        let index = self.nodes.len() as u32;
        self.nodes.push(Node::default());
        self.building.push(true);
        self.memo.insert(signals.clone(), index);
        self.fill(index as usize, signals, depth)?;
        self.building[index as usize] = false;
        Ok(index)
    }

    fn fill(&mut self, node: usize, signals: Vec<u16>, depth: usize) -> Result<(), String> {
        if depth > MAX_MUX_DEPTH {
            return Err("multiplexers are nested in a cycle".to_string());
        }
        let mut muxes = Vec::new();
        let mut invalid_float = None;
        for &i in &signals {
            let draft = &self.drafts[usize::from(i)];
            if draft.signal.kind == ValueKind::InvalidFloat && invalid_float.is_none() {
                invalid_float = Some(i);
            }
            if !draft.signal.is_multiplexer {
                continue;
            }
            let branches = self.branches(&draft.signal, depth)?;
            if !branches.is_empty() {
                muxes.push(Mux::new(i, DecodeOp::new(draft.signal.codec), branches));
            }
        }
        self.nodes[node] = Node {
            signals,
            ops: Vec::new(),
            muxes,
            invalid_float,
        };
        Ok(())
    }

    /// Splits the selector values of a multiplexer's children (and its value
    /// table) into intervals that select the same set of signals.
    fn branches(&mut self, mux: &Signal, depth: usize) -> Result<Vec<Branch>, String> {
        let children = self.children_of(&mux.name);
        let mut ranges: Vec<(i128, i128)> = Vec::new();
        for &c in &children {
            if let Some(ids) = &self.drafts[usize::from(c)].ids {
                ranges.extend(ids.iter().copied());
            }
        }
        ranges.extend(mux.choices.iter().map(|(v, _)| (i128::from(*v), i128::from(*v))));
        let mut cuts = BTreeSet::new();
        for &(lo, hi) in &ranges {
            cuts.insert(lo);
            cuts.insert(hi + 1);
        }
        let cuts: Vec<i128> = cuts.into_iter().collect();
        let mut branches: Vec<Branch> = Vec::new();
        for w in cuts.windows(2) {
            let (lo, hi) = (w[0], w[1] - 1);
            if !ranges.iter().any(|&(a, b)| a <= lo && hi <= b) {
                continue;
            }
            let selected: Vec<u16> = children
                .iter()
                .copied()
                .filter(|&c| {
                    self.drafts[usize::from(c)]
                        .ids
                        .as_ref()
                        .is_some_and(|ids| ids.iter().any(|&(a, b)| a <= lo && hi <= b))
                })
                .collect();
            let node = self.node_for(selected, depth + 1)?;
            match branches.last_mut() {
                Some(prev) if prev.node == node && prev.hi + 1 == lo => prev.hi = hi,
                _ => branches.push(Branch { lo, hi, node }),
            }
        }
        Ok(branches)
    }
}

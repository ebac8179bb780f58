//! Decoding a message's frames a signal at a time, across many frames: what
//! the decoded lake needs, since it stores each signal's values together.
//!
//! [`Message::decode`] walks one frame's signals and writes 16 bytes per
//! value (signal index and value) that the lake writer then scatters into a
//! column per signal. A message whose frames are classic (8 bytes at most)
//! and whose signals all take the fast form can instead keep each frame as
//! one word and decode each signal over all the words in one tight loop,
//! straight into its column. Standard multiplexing (one multiplexer whose
//! values select groups of plain signals) keeps that form: the multiplexer
//! is read per frame, which is also where an unknown value is refused, so a
//! frame that fails is known before anything of it is stored.
//!
//! The values are bit for bit those of [`Message::decode`], in the same
//! order (the root's signals, then the selected group's); the tests below
//! check it frame by frame.

use super::error::DecodeError;
use super::message::{Message, Node};
use super::signal::DecodeOp;

/// One frame of a message that decodes by columns: its payload as a word
/// (its first bytes, up to the message's length, little-endian, the rest
/// zero) and the node of the multiplexing tree it selects (0: the root only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnFrame {
    pub word: u64,
    pub node: u32,
}

/// How a message's frames decode by columns (see the module's comment), for
/// a message that qualifies ([`ColumnDecoder::new`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDecoder {
    length: usize,
    /// The message's multiplexing tree: a root and, when multiplexed, the
    /// groups its one multiplexer selects.
    nodes: Vec<Node>,
    /// The multiplexer's name, for the error of a value it does not define.
    multiplexer: String,
}

impl ColumnDecoder {
    /// The column decoder of `message`; `None` when its frames must be decoded
    /// one by one: FD frames, a signal not of the fast form or past the 8th
    /// byte, a float of an impossible length, nested or extended multiplexing,
    /// or a signal in more than one group.
    pub fn new(message: &Message) -> Option<Self> {
        let root = message.nodes.first()?;
        if message.length > 8 || root.muxes.len() > 1 {
            return None;
        }
        let groups = &message.nodes[1..];
        let mut seen = vec![false; message.signals.len()];
        for node in &message.nodes {
            let fits = node.invalid_float.is_none()
                && node.ops.len() == node.signals.len()
                && node.ops.iter().all(DecodeOp::fits_word)
                && node.muxes.iter().all(|m| m.op.fits_word());
            if !fits {
                return None;
            }
            for &signal in &node.signals {
                if std::mem::replace(seen.get_mut(usize::from(signal))?, true) {
                    return None;
                }
            }
        }
        if groups.iter().any(|g| !g.muxes.is_empty()) {
            return None;
        }
        let multiplexer = match root.muxes.first() {
            Some(mux) => message.signals.get(usize::from(mux.signal))?.name.clone(),
            None => String::new(),
        };
        Some(Self {
            length: message.length,
            nodes: message.nodes.clone(),
            multiplexer,
        })
    }

    /// Reads one frame's payload: its word and the group it selects, or the
    /// error [`Message::decode`] gives for it.
    #[inline]
    pub fn frame(&self, data: &[u8]) -> Result<ColumnFrame, DecodeError> {
        if data.len() < self.length {
            return Err(DecodeError::WrongLength {
                actual: data.len(),
                expected: self.length,
            });
        }
        let mut bytes = [0u8; 8];
        bytes[..self.length].copy_from_slice(&data[..self.length]);
        let word = u64::from_le_bytes(bytes);
        let Some(mux) = self.nodes[0].muxes.first() else {
            return Ok(ColumnFrame { word, node: 0 });
        };
        // Fast signals are exact integers scaled in f64: int() is a truncation.
        let selector = i128::from(mux.op.physical_word(word) as i64);
        match mux.find(selector) {
            Some(node) => Ok(ColumnFrame { word, node }),
            None => Err(DecodeError::UnknownMultiplexerValue {
                multiplexer: self.multiplexer.clone(),
                got: selector,
                expected: mux.describe(),
            }),
        }
    }

    /// How many values a frame decodes into.
    pub fn values(&self, frame: ColumnFrame) -> usize {
        let group = match frame.node {
            0 => None,
            node => self.nodes.get(node as usize),
        };
        self.nodes[0].signals.len() + group.map_or(0, |g| g.signals.len())
    }

    /// How many nodes the tree has: every [`ColumnFrame::node`] is below it.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The signals of node `node` (indices into [`Message::signals`]), each
    /// with its column decoder.
    pub fn signals(&self, node: usize) -> impl Iterator<Item = (u16, Column)> + '_ {
        let node = &self.nodes[node];
        (node.signals.iter().zip(&node.ops)).map(|(&signal, &op)| (signal, Column { op }))
    }
}

/// Decodes one signal over many frames' words.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    op: DecodeOp,
}

impl Column {
    /// Appends the signal's value in each of `words` to `out`.
    pub fn decode(&self, words: &[u64], out: &mut Vec<f64>) {
        let op = self.op;
        out.extend(words.iter().map(|&word| op.physical_word(word)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dbc::{Database, SignalValue};

    /// A deterministic stream of payload bytes (xorshift).
    fn payloads(seed: u64) -> impl Iterator<Item = [u8; 8]> {
        let mut state = seed | 1;
        std::iter::from_fn(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            Some(state.to_le_bytes())
        })
    }

    /// Every frame of `db`'s column-decodable messages decodes by columns
    /// exactly as [`Message::decode`] decodes it: the same error, or the
    /// same values bit for bit in the same order. How many messages qualified.
    fn columns_agree_with_rows(db: &Database, frames_per_message: usize) -> usize {
        let mut qualified = 0;
        let mut values = Vec::new();
        for message in db.messages() {
            let Some(decoder) = ColumnDecoder::new(message) else {
                continue;
            };
            qualified += 1;
            for (i, payload) in payloads(message.id.raw().into()).take(frames_per_message).enumerate() {
                // Some frames short of the message's length, some longer.
                let len = if i % 17 == 0 {
                    message.length.saturating_sub(1)
                } else {
                    8
                };
                let data = &payload[..len];
                let row = message.decode(data, &mut values).map(|()| values.clone());
                let column = decoder.frame(data).map(|frame| {
                    assert_eq!(decoder.values(frame), values.len(), "{}", message.name);
                    let mut out = Vec::new();
                    let nodes = if frame.node == 0 {
                        vec![0]
                    } else {
                        vec![0, frame.node as usize]
                    };
                    for node in nodes {
                        for (signal, column) in decoder.signals(node) {
                            let mut value = Vec::new();
                            column.decode(&[frame.word], &mut value);
                            out.push(SignalValue {
                                signal,
                                value: value[0],
                            });
                        }
                    }
                    out
                });
                match (&row, &column) {
                    (Ok(row), Ok(column)) => {
                        let bits =
                            |v: &[SignalValue]| v.iter().map(|s| (s.signal, s.value.to_bits())).collect::<Vec<_>>();
                        assert_eq!(bits(row), bits(column), "{} {data:02x?}", message.name);
                    }
                    (row, column) => assert_eq!(
                        row.as_ref().err(),
                        column.as_ref().err(),
                        "{} {data:02x?}",
                        message.name
                    ),
                }
            }
        }
        qualified
    }

    #[test]
    fn the_built_in_dbc_decodes_by_columns_as_by_rows() {
        let db = crate::format::dbc::built_in().unwrap();
        let qualified = columns_agree_with_rows(&db, 5_000);
        // All but the FD message and the one with a float signal.
        assert_eq!(qualified, db.messages().len() - 2);
        let cells = db.message_by_name("BMS_CellVoltages").unwrap();
        assert!(ColumnDecoder::new(cells).is_some(), "standard multiplexing qualifies");
    }

    #[test]
    fn signed_big_endian_scaled_and_multiplexed_signals_decode_by_columns_as_by_rows() {
        let db = Database::from_text(
            r#"
BO_ 1 Mixed: 8 E
 SG_ Mux M : 0|4@1+ (1,0) [0|0] "" X
 SG_ A m0 : 4|12@1- (0.5,-3) [0|0] "" X
 SG_ B m1 : 15|10@0+ (0.25,1) [0|0] "" X
 SG_ C m1 : 40|24@0- (1,0) [0|0] "" X
 SG_ D : 48|16@1- (0.001,0) [0|0] "" X
 SG_ E m3 : 63|1@0+ (1,0) [0|0] "" X

BO_ 2 Short: 3 E
 SG_ S : 2|20@1- (3,7) [0|0] "" X
 SG_ T : 7|6@0+ (1,0) [0|0] "" X

BO_ 3 Past: 4 E
 SG_ Beyond : 40|8@1+ (1,0) [0|0] "" X

BO_ 4 Float: 8 E
 SG_ F : 0|32@1- (1,0) [0|0] "" X

BO_ 6 Ranges: 8 E
 SG_ Sel M : 0|4@1+ (1,0) [0|0] "" X
 SG_ Low m0 : 8|8@1+ (1,0) [0|0] "" X
 SG_ High m4 : 16|8@1- (2,0) [0|0] "" X

SIG_VALTYPE_ 4 F : 1;
SG_MUL_VAL_ 6 Low Sel 0-5;
SG_MUL_VAL_ 6 High Sel 4-9;
"#,
            "t.dbc",
        )
        .unwrap();
        let by_name = |name| ColumnDecoder::new(db.message_by_name(name).unwrap());
        assert!(
            by_name("Past").is_some(),
            "a signal past the length but within 8 bytes reads zeros"
        );
        assert!(by_name("Float").is_none());
        assert!(
            by_name("Ranges").is_none(),
            "Low and High share selector values 4 and 5: signals in two groups"
        );
        // Mixed, Short and Past.
        assert_eq!(columns_agree_with_rows(&db, 20_000), 3);

        let nested = Database::from_text(crate::format::dbc::tests::EXTENDED_MUX, "nested.dbc").unwrap();
        assert!(
            nested.messages()[0].columns().is_none(),
            "nested multiplexing is decoded frame by frame"
        );
    }

    /// The DBC files of the repository and of the oracle's corpus (its
    /// lenient ones loaded leniently): every frame agrees. Set
    /// `CANOPY_DBC_CORPUS` to a directory of more DBC files (opendbc's) to
    /// check those too.
    #[test]
    fn the_repositorys_dbc_files_decode_by_columns_as_by_rows() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![
            root.join("dbc"),
            root.join("tests/oracle/dbc"),
            root.join("tests/oracle/dbc/lenient"),
        ];
        dirs.extend(
            std::env::var_os("CANOPY_DBC_CORPUS")
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from),
        );
        let (mut files, mut qualified) = (0, 0);
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_none_or(|e| e != "dbc") {
                    continue;
                }
                let Ok(db) = Database::load_with(&path, Default::default()) else {
                    continue;
                };
                files += 1;
                qualified += columns_agree_with_rows(&db, 200);
            }
        }
        assert!(files >= 11 && qualified >= 20, "{files} files, {qualified} messages");
    }
}

//! What a file's attributes (`BA_`, with their `BA_DEF_DEF_` defaults)
//! say of a message or signal: long names, cycle time, frame format. Apart
//! from the lines themselves, since an attribute's value may be an index
//! into its definition's enum.

use can_dbc::{AttributeValue, AttributeValueType, MessageId};

use super::Builder;
use crate::format::frame::CanId;

impl Builder<'_> {
    pub(super) fn message_long_name(&self, id: MessageId) -> Option<String> {
        match self.dbc.message_attribute(id, "SystemMessageLongSymbol") {
            Some(AttributeValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub(super) fn signal_long_name(&self, id: MessageId, short: &str) -> Option<String> {
        match self.dbc.signal_attribute(id, short, "SystemSignalLongSymbol") {
            Some(AttributeValue::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    pub(super) fn cycle_time(&self, id: MessageId) -> Option<u32> {
        match self.dbc.resolved_message_attribute(id, "GenMsgCycleTime")? {
            AttributeValue::Uint(v) => u32::try_from(*v).ok(),
            AttributeValue::Int(v) => u32::try_from(*v).ok(),
            AttributeValue::Double(v) if *v >= 0.0 => Some(*v as u32),
            _ => None,
        }
        .filter(|&ms| ms > 0)
    }

    /// `VFrameFormat` names the frame format; its value is an index into the
    /// attribute's enum, or the enum text itself.
    /// `VFrameFormat` of a message (`StandardCAN_FD`, `J1939PG`, ...), its default applied.
    fn frame_format(&self, id: MessageId) -> Option<String> {
        match self.dbc.resolved_message_attribute(id, "VFrameFormat")? {
            AttributeValue::String(s) => Some(s.clone()),
            AttributeValue::Uint(i) => self.enum_value("VFrameFormat", *i as usize),
            AttributeValue::Int(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| self.enum_value("VFrameFormat", i)),
            AttributeValue::Double(_) => None,
        }
    }

    pub(super) fn message_is_fd(&self, id: MessageId) -> bool {
        self.frame_format(id).is_some_and(|t| t.ends_with("CAN_FD"))
    }

    /// A J1939 parameter group: `VFrameFormat` `J1939PG` (cantools' sign), or
    /// an extended frame of a database whose `ProtocolType` is `J1939`.
    pub(super) fn message_is_j1939(&self, id: MessageId, can_id: CanId) -> bool {
        let database_j1939 = self.dbc.attribute_values_database.iter().any(|a| {
            a.name == "ProtocolType" && matches!(&a.value, AttributeValue::String(s) if s.eq_ignore_ascii_case("J1939"))
        });
        self.frame_format(id).is_some_and(|t| t == "J1939PG") || (database_j1939 && can_id.is_extended())
    }

    fn enum_value(&self, attribute: &str, index: usize) -> Option<String> {
        self.dbc.attribute_definitions.iter().find_map(|d| match d {
            can_dbc::AttributeDefinition::Message(name, AttributeValueType::Enum(values)) if name == attribute => {
                values.get(index).cloned()
            }
            _ => None,
        })
    }
}

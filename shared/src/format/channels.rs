//! Bus names and the numbered channels of Vector's formats. Canopy names a
//! bus as SocketCAN does (`can0`, `vcan1`, a name from the vehicle's
//! configuration); ASC and BLF number channels from 1. A name that ends in
//! a number N takes channel N + 1 (`can0` is channel 1, as python-can and
//! CANalyzer count), unless another name took it first; any other name takes
//! the lowest channel still free. Read back, channel N is bus `can<N-1>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::frame::BusName;

/// The channel each bus written so far took.
#[derive(Debug, Default, Clone)]
pub struct Channels {
    by_bus: BTreeMap<BusName, u16>,
}

impl Channels {
    /// `bus`'s channel, given it on first sight.
    pub fn channel(&mut self, bus: &BusName) -> u16 {
        if let Some(&channel) = self.by_bus.get(bus) {
            return channel;
        }
        let taken = |c: u16| self.by_bus.values().any(|&t| t == c);
        let wanted = trailing_number(bus).and_then(|n| n.checked_add(1));
        let channel = match wanted {
            Some(c) if !taken(c) => c,
            _ => (1..=u16::MAX).find(|&c| !taken(c)).unwrap_or(u16::MAX),
        };
        self.by_bus.insert(bus.clone(), channel);
        channel
    }

    /// Each bus and its channel, by name.
    pub fn assigned(&self) -> impl Iterator<Item = (&BusName, u16)> {
        self.by_bus.iter().map(|(bus, &c)| (bus, c))
    }
}

/// The bus a channel read from a file stands for: channel N is `can<N-1>`.
pub fn bus_of(channel: u16) -> BusName {
    Arc::from(format!("can{}", channel.saturating_sub(1)))
}

fn trailing_number(name: &str) -> Option<u16> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    name[name.len() - digits..].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_buses_keep_their_number_and_others_take_the_lowest_free() {
        let mut channels = Channels::default();
        let bus = |s: &str| -> BusName { Arc::from(s) };
        assert_eq!(channels.channel(&bus("can2")), 3);
        assert_eq!(channels.channel(&bus("can0")), 1);
        assert_eq!(channels.channel(&bus("vcan0")), 2, "channel 1 is can0's");
        assert_eq!(channels.channel(&bus("powertrain")), 4);
        assert_eq!(channels.channel(&bus("can0")), 1, "the same bus, the same channel");
        assert_eq!(&*bus_of(1), "can0");
        assert_eq!(&*bus_of(3), "can2");
    }
}

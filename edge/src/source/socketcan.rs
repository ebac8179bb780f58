//! Live buses through SocketCAN, classic and FD, several at once: one reader
//! thread per interface, kernel receive timestamps, one channel to the agent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use canopy::format::frame::{BusName, CanFrame, CanId, FrameFlags};
use socketcan::{CanAnyFrame, CanFdSocket, EmbeddedFrame, Frame, Socket, SocketOptions};
use tracing::{error, warn};

use super::{Source, Status};

// linux/can.h: the id word's flags and masks.
const CAN_EFF_FLAG: u32 = 0x8000_0000;
const CAN_EFF_MASK: u32 = 0x1FFF_FFFF;
const CAN_SFF_MASK: u32 = 0x0000_07FF;
const CAN_ERR_MASK: u32 = 0x1FFF_FFFF;

/// Frames waiting between the reader threads and the agent.
const CHANNEL: usize = 1 << 16;

/// A SocketCAN frame as Canopy's frame; `None` for what cannot be one.
pub fn convert(frame: &CanAnyFrame, ts_us: i64, bus: &BusName) -> Option<CanFrame> {
    let word = frame.id_word();
    let id = if word & CAN_EFF_FLAG != 0 {
        CanId::extended(word & CAN_EFF_MASK)?
    } else {
        CanId::standard(word & CAN_SFF_MASK)?
    };
    match frame {
        CanAnyFrame::Normal(f) => CanFrame::new(ts_us, bus.clone(), id, FrameFlags::empty(), f.data()).ok(),
        CanAnyFrame::Remote(f) => CanFrame::remote(ts_us, bus.clone(), id, u8::try_from(f.dlc()).ok()?).ok(),
        CanAnyFrame::Error(f) => CanFrame::new(
            ts_us,
            bus.clone(),
            CanId::Extended(word & CAN_ERR_MASK),
            FrameFlags::ERROR,
            f.data(),
        )
        .ok(),
        CanAnyFrame::Fd(f) => {
            let mut flags = FrameFlags::FD;
            if f.is_brs() {
                flags.insert(FrameFlags::BRS);
            }
            if f.is_esi() {
                flags.insert(FrameFlags::ESI);
            }
            CanFrame::new(ts_us, bus.clone(), id, flags, f.data()).ok()
        }
    }
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub struct SocketCan {
    frames: Receiver<CanFrame>,
    stop: Arc<AtomicBool>,
}

impl SocketCan {
    /// Opens every interface (failing early, naming the one that would not open).
    pub fn open(interfaces: &[String]) -> Result<Self> {
        let (tx, rx) = sync_channel(CHANNEL);
        let stop = Arc::new(AtomicBool::new(false));
        for name in interfaces {
            let socket = CanFdSocket::open(name).with_context(|| format!("source.interfaces: cannot open {name}"))?;
            socket
                .set_recv_timestamp(true)
                .with_context(|| format!("{name}: enabling receive timestamps"))?;
            socket
                .set_read_timeout(Duration::from_millis(200))
                .with_context(|| format!("{name}: setting a read timeout"))?;
            let bus: BusName = Arc::from(name.as_str());
            let (tx, stop) = (tx.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("can-{name}"))
                .spawn(move || read_loop(socket, bus, tx, stop))?;
        }
        Ok(Self { frames: rx, stop })
    }
}

fn read_loop(socket: CanFdSocket, bus: BusName, tx: SyncSender<CanFrame>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match socket.read_frame_with_timestamp() {
            Ok((frame, at)) => {
                let Some(frame) = convert(&frame, micros(at), &bus) else {
                    continue;
                };
                match tx.try_send(frame) {
                    Ok(()) => {}
                    Err(TrySendError::Full(frame)) => {
                        // The agent is behind: wait rather than drop a frame already read.
                        if tx.send(frame).is_err() {
                            return;
                        }
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => {
                error!(bus = %bus, error = %e, "reading SocketCAN failed; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

impl Drop for SocketCan {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Source for SocketCan {
    fn read(&mut self, out: &mut Vec<CanFrame>, max: usize, wait: Duration) -> Result<Status> {
        match self.frames.recv_timeout(wait) {
            Ok(frame) => out.push(frame),
            Err(RecvTimeoutError::Timeout) => return Ok(Status::Frames { cursor: None }),
            Err(RecvTimeoutError::Disconnected) => {
                warn!("every SocketCAN reader stopped");
                return Ok(Status::End);
            }
        }
        while out.len() < max {
            match self.frames.try_recv() {
                Ok(frame) => out.push(frame),
                Err(_) => break,
            }
        }
        Ok(Status::Frames { cursor: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketcan::id::FdFlags;
    use socketcan::{CanDataFrame, CanErrorFrame, CanFdFrame, CanRemoteFrame, ExtendedId, StandardId};

    fn bus() -> BusName {
        Arc::from("can1")
    }

    #[test]
    fn classic_frames_keep_id_type_and_payload() {
        let f = CanDataFrame::new(StandardId::new(0x123).unwrap(), &[1, 2, 3]).unwrap();
        let c = convert(&CanAnyFrame::Normal(f), 42, &bus()).unwrap();
        assert_eq!(
            (c.id, c.data(), c.ts_us, &*c.bus),
            (CanId::Standard(0x123), &[1u8, 2, 3][..], 42, "can1")
        );
        let f = CanDataFrame::new(ExtendedId::new(0x18FF50E5).unwrap(), &[9; 8]).unwrap();
        assert_eq!(
            convert(&CanAnyFrame::Normal(f), 0, &bus()).unwrap().id,
            CanId::Extended(0x18FF50E5)
        );
    }

    #[test]
    fn fd_frames_keep_brs_and_esi() {
        let f = CanFdFrame::with_flags(
            StandardId::new(0x7FF).unwrap(),
            &[0xAB; 64],
            FdFlags::BRS | FdFlags::ESI,
        )
        .unwrap();
        let c = convert(&CanAnyFrame::Fd(f), 0, &bus()).unwrap();
        assert!(c.is_fd() && c.flags.contains(FrameFlags::BRS) && c.flags.contains(FrameFlags::ESI));
        assert_eq!(c.data().len(), 64);
    }

    #[test]
    fn remote_and_error_frames() {
        let r = CanRemoteFrame::new_remote(StandardId::new(0x10).unwrap(), 4).unwrap();
        let c = convert(&CanAnyFrame::Remote(r), 0, &bus()).unwrap();
        assert!(c.is_remote() && c.dlc() == 4 && c.data().is_empty());
        let e = CanErrorFrame::new_error(0x004, &[0, 4, 0, 0, 0, 0, 0, 0]).unwrap();
        let c = convert(&CanAnyFrame::Error(e), 0, &bus()).unwrap();
        assert!(c.is_error());
        assert_eq!(c.id, CanId::Extended(0x004));
    }
}

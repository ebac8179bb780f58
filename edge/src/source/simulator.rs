//! The simulator as a frame source: a simulated vehicle's frames, paced
//! against the wall clock (or as fast as possible), for a set duration.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use canopy::format::dbc::Database;
use canopy::format::frame::CanFrame;

use super::{Pacer, Source, Status};
use crate::ev_model::{Params, Simulation};

pub struct Simulator {
    sim: Simulation,
    end_us: Option<i64>,
    pacer: Pacer,
}

impl Simulator {
    /// `duration_s` 0 runs until stopped.
    pub fn new(db: Arc<Database>, params: &Params, duration_s: f64, speed: f64) -> Result<Self> {
        let end_us = (duration_s > 0.0).then(|| params.start_us + (duration_s * 1e6) as i64);
        Ok(Self {
            sim: Simulation::new(db, params)?,
            end_us,
            pacer: Pacer::new(speed),
        })
    }
}

impl Source for Simulator {
    fn read(&mut self, out: &mut Vec<CanFrame>, max: usize, wait: Duration) -> Result<Status> {
        let start = out.len();
        while out.len() < max {
            let next = self.sim.next_time();
            if self.end_us.is_some_and(|end| next >= end) {
                return Ok(if out.len() > start {
                    Status::Frames { cursor: None }
                } else {
                    Status::End
                });
            }
            let delay = self.pacer.wait_for(next);
            if !delay.is_zero() {
                if out.len() > start {
                    break;
                }
                std::thread::sleep(delay.min(wait));
                if delay > wait {
                    break;
                }
            }
            out.push(self.sim.next_frame()?);
        }
        Ok(Status::Frames { cursor: None })
    }
}

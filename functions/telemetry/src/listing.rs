//! Keeping the fleet's directory, counts and heard index as telemetry
//! arrives: each vehicle listed in the fleet's view and its groups'
//! ([`VehicleGroups::views_of`]) with its [`Standing`]. The directory writes
//! only when a vehicle's record changes; this instance remembers what it
//! last entered of each vehicle, so a message that moves nothing (the
//! same status, in the same five-minute step, whatever its readings)
//! costs nothing.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use canopy::domain::access::VehicleGroups;
use canopy::domain::device_id::DeviceId;
use canopy::domain::standing::Standing;
use canopy::domain::telemetry::Telemetry;
use canopy::ports::TableError;
use canopy::ports::directory::VehicleDirectory;

pub struct Listings<R> {
    pub directory: R,
    pub groups: VehicleGroups,
    /// What this instance last entered of each vehicle.
    entered: Mutex<HashMap<DeviceId, Standing>>,
}

impl<R: VehicleDirectory> Listings<R> {
    pub fn new(directory: R, groups: VehicleGroups) -> Self {
        Self {
            directory,
            groups,
            entered: Mutex::default(),
        }
    }

    /// Enters `t`'s vehicle with the standing `t` gives it, unless this instance did already.
    pub async fn observe(&self, t: &Telemetry) -> Result<(), TableError> {
        let (vehicle, standing) = (&t.vehicle_id, Standing::of(t));
        if self
            .entered()
            .get(vehicle)
            .is_some_and(|entered| !standing.moved_from(entered))
        {
            return Ok(());
        }
        let views = self.groups.views_of(vehicle.as_str());
        self.directory.enter(vehicle, &views, standing).await?;
        self.entered().insert(vehicle.clone(), standing);
        Ok(())
    }

    fn entered(&self) -> MutexGuard<'_, HashMap<DeviceId, Standing>> {
        self.entered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

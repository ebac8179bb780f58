//! Keeping the fleet's directory as telemetry arrives: each vehicle listed in
//! the fleet's view and its groups' ([`VehicleGroups::views_of`]). The
//! directory itself writes only when a vehicle's views change; this instance
//! remembers whom it entered, so only a vehicle's first message here costs a
//! read.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use canopy::domain::access::VehicleGroups;
use canopy::domain::device_id::DeviceId;
use canopy::ports::TableError;
use canopy::ports::directory::VehicleDirectory;

pub struct Listings<R> {
    pub directory: R,
    pub groups: VehicleGroups,
    /// Vehicles entered with `groups` by this instance.
    entered: Mutex<HashSet<DeviceId>>,
}

impl<R: VehicleDirectory> Listings<R> {
    pub fn new(directory: R, groups: VehicleGroups) -> Self {
        Self {
            directory,
            groups,
            entered: Mutex::default(),
        }
    }

    /// Lists `vehicle` in its views, unless this instance did already.
    pub async fn enter(&self, vehicle: &DeviceId) -> Result<(), TableError> {
        if self.entered().contains(vehicle) {
            return Ok(());
        }
        self.directory
            .enter(vehicle, &self.groups.views_of(vehicle.as_str()))
            .await?;
        self.entered().insert(vehicle.clone());
        Ok(())
    }

    fn entered(&self) -> MutexGuard<'_, HashSet<DeviceId>> {
        self.entered.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

//! Tests of the `herald` binary as users and scripts run it.

mod cluster;
mod durability;
mod hostile;
mod load;
mod outage;
mod serve;
mod support;
mod verify;

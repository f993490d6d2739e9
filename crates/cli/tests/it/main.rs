//! Tests of the `herald` binary as users and scripts run it.

mod serve;
mod support;

//! Runs the scheduled jobs (`crate::service::jobs`) every `JOB_INTERVAL_SECONDS`, in whichever
//! process gets there first.
//!
//! Every process looks once a minute (or every interval, if shorter); a job runs only in the
//! process that takes its lease in the store, and the lease is held for the whole interval, not
//! given back after the run. So with any number of processes, and across restarts, each job runs
//! about once per interval; when the process that ran it last is gone, another one runs it when
//! the interval is over.

use crate::service::jobs::{Job, JobService};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a process looks whether a job is due, at most.
const LOOK_EVERY: Duration = Duration::from_secs(60);
/// How long after start-up the first look is.
const FIRST_LOOK: Duration = Duration::from_secs(5);

pub fn spawn(jobs: JobService, interval: Duration, owner: String, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = FIRST_LOOK.min(interval);
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            wait = LOOK_EVERY.min(interval);
            for job in Job::ALL {
                match jobs.run_scheduled(job, &owner, interval).await {
                    Ok(Some(report)) => {
                        tracing::info!(job = job.name(), changed = report.changed, "{}", report.summary)
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(job = job.name(), %error, "a scheduled job failed; it runs again next interval")
                    }
                }
            }
        }
    })
}

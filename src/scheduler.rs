//! Runs poll cycles on the configured cron schedule (UTC).
//!
//! A tokio task sleeping until the schedule's next run, computed by the same parsed
//! [`Schedule`] (croner) the configuration validates with; a cron job runner crate would
//! bring a time-zone database and a job store this one job does not need.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::config::Schedule;

/// What a scheduler tick runs.
pub type Task = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A cron scheduler with one job, which can be given a new schedule.
pub struct Scheduler {
    schedule: Schedule,
    task: Task,
    runner: JoinHandle<()>,
}

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
#[error("scheduler: the schedule {0:?} never runs again")]
pub struct SchedulerError(String);

/// The longest single sleep: waking at least this often re-reads the wall clock, so a
/// clock step or a suspended machine does not shift the runs.
const MAX_SLEEP: Duration = Duration::from_secs(30);

impl Scheduler {
    /// Starts running `task` on `schedule`; the task itself keeps cycles from overlapping.
    pub async fn start(schedule: &Schedule, task: Task) -> Result<Scheduler, SchedulerError> {
        let runner = spawn_runner(schedule, task.clone())?;
        Ok(Scheduler { schedule: schedule.clone(), task, runner })
    }

    /// Moves the job to a new schedule, when it differs.
    pub async fn reschedule(&mut self, schedule: &Schedule) -> Result<(), SchedulerError> {
        if schedule.as_str() == self.schedule.as_str() {
            return Ok(());
        }
        let runner = spawn_runner(schedule, self.task.clone())?;
        std::mem::replace(&mut self.runner, runner).abort();
        self.schedule = schedule.clone();
        Ok(())
    }

    /// The next time the job runs.
    pub async fn next_tick(&mut self) -> Option<DateTime<Utc>> {
        self.schedule.next_after(Utc::now())
    }

    /// Stops the scheduler; a cycle already started runs on.
    pub async fn shutdown(&mut self) {
        self.runner.abort();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.runner.abort();
    }
}

fn spawn_runner(schedule: &Schedule, task: Task) -> Result<JoinHandle<()>, SchedulerError> {
    let schedule = schedule.clone();
    let mut next = schedule.next_after(Utc::now()).ok_or_else(|| SchedulerError(schedule.as_str().to_owned()))?;
    Ok(tokio::spawn(async move {
        loop {
            let now = Utc::now();
            if now < next {
                tokio::time::sleep((next - now).to_std().unwrap_or_default().min(MAX_SLEEP)).await;
                continue;
            }
            tokio::spawn(task());
            // Runs missed while the machine slept are not made up, as cron does not.
            match schedule.next_after(now.max(next)) {
                Some(n) => next = n,
                None => return,
            }
        }
    }))
}

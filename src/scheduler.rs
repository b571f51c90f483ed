//! Runs poll cycles on the configured cron schedule (UTC).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::config::Schedule;

/// What a scheduler tick runs.
pub type Task = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A cron scheduler with one job, which can be given a new schedule.
pub struct Scheduler {
    inner: JobScheduler,
    job: Uuid,
    schedule: String,
    task: Task,
}

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
#[error("scheduler: {0}")]
pub struct SchedulerError(#[from] JobSchedulerError);

impl Scheduler {
    /// Starts running `task` on `schedule`; the task itself keeps cycles from overlapping.
    pub async fn start(schedule: &Schedule, task: Task) -> Result<Scheduler, SchedulerError> {
        let inner = JobScheduler::new().await?;
        let job = inner.add(make_job(schedule, task.clone())?).await?;
        inner.start().await?;
        Ok(Scheduler { inner, job, schedule: schedule.as_str().to_owned(), task })
    }

    /// Moves the job to a new schedule, when it differs.
    pub async fn reschedule(&mut self, schedule: &Schedule) -> Result<(), SchedulerError> {
        if schedule.as_str() == self.schedule {
            return Ok(());
        }
        let job = self.inner.add(make_job(schedule, self.task.clone())?).await?;
        self.inner.remove(&self.job).await?;
        self.job = job;
        self.schedule = schedule.as_str().to_owned();
        Ok(())
    }

    /// The next time the job runs.
    pub async fn next_tick(&mut self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.next_tick_for_job(self.job).await.ok().flatten()
    }

    /// Stops the scheduler.
    pub async fn shutdown(&mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::debug!(error = %e, "scheduler shutdown");
        }
    }
}

fn make_job(schedule: &Schedule, task: Task) -> Result<Job, JobSchedulerError> {
    Job::new_async_tz(schedule.as_str(), chrono::Utc, move |_, _| task())
}

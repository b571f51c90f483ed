//! Runs poll cycles on the configured cron schedule (UTC), never two at once.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::Mutex;
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
    running: Arc<Mutex<()>>,
}

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
#[error("scheduler: {0}")]
pub struct SchedulerError(#[from] JobSchedulerError);

impl Scheduler {
    /// Starts running `task` on `schedule`. A tick that finds the previous run still
    /// going is skipped, with a warning, rather than doubling the load on the provider.
    /// `running` is held by whoever runs a cycle, the scheduler included.
    pub async fn start(schedule: &Schedule, task: Task, running: Arc<Mutex<()>>) -> Result<Scheduler, SchedulerError> {
        let inner = JobScheduler::new().await?;
        let job = inner.add(make_job(schedule, task.clone(), running.clone())?).await?;
        inner.start().await?;
        Ok(Scheduler { inner, job, schedule: schedule.as_str().to_owned(), task, running })
    }

    /// Moves the job to a new schedule, when it differs.
    pub async fn reschedule(&mut self, schedule: &Schedule) -> Result<(), SchedulerError> {
        if schedule.as_str() == self.schedule {
            return Ok(());
        }
        let job = self.inner.add(make_job(schedule, self.task.clone(), self.running.clone())?).await?;
        self.inner.remove(&self.job).await?;
        self.job = job;
        self.schedule = schedule.as_str().to_owned();
        Ok(())
    }

    /// Stops the scheduler.
    pub async fn shutdown(&mut self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::debug!(error = %e, "scheduler shutdown");
        }
    }
}

fn make_job(schedule: &Schedule, task: Task, running: Arc<Mutex<()>>) -> Result<Job, JobSchedulerError> {
    Job::new_async_tz(schedule.as_str(), chrono::Utc, move |_, _| {
        let task = task.clone();
        let running = running.clone();
        Box::pin(async move {
            let Ok(_guard) = running.try_lock() else {
                tracing::warn!("the previous poll cycle is still running; skipping this one");
                return;
            };
            task().await;
        })
    })
}

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
use crate::model::Clock;

/// What a scheduler tick runs.
pub type Task = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A cron scheduler with one job, which can be given a new schedule.
pub struct Scheduler {
    schedule: Schedule,
    task: Task,
    clock: Arc<dyn Clock>,
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
    /// Starts running `task` on `schedule`, telling the time by `clock`; the task itself
    /// keeps cycles from overlapping.
    pub async fn start(schedule: &Schedule, task: Task, clock: Arc<dyn Clock>) -> Result<Scheduler, SchedulerError> {
        let runner = spawn_runner(schedule, task.clone(), clock.clone())?;
        Ok(Scheduler { schedule: schedule.clone(), task, clock, runner })
    }

    /// Moves the job to a new schedule, when it differs.
    pub async fn reschedule(&mut self, schedule: &Schedule) -> Result<(), SchedulerError> {
        if schedule.as_str() == self.schedule.as_str() {
            return Ok(());
        }
        let runner = spawn_runner(schedule, self.task.clone(), self.clock.clone())?;
        std::mem::replace(&mut self.runner, runner).abort();
        self.schedule = schedule.clone();
        Ok(())
    }

    /// The next time the job runs.
    pub async fn next_tick(&mut self) -> Option<DateTime<Utc>> {
        self.schedule.next_after(self.clock.now())
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

fn spawn_runner(schedule: &Schedule, task: Task, clock: Arc<dyn Clock>) -> Result<JoinHandle<()>, SchedulerError> {
    let schedule = schedule.clone();
    let mut next = schedule.next_after(clock.now()).ok_or_else(|| SchedulerError(schedule.as_str().to_owned()))?;
    Ok(tokio::spawn(async move {
        loop {
            let now = clock.now();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::FutureExt;

    use super::*;
    use crate::model::TokioClock;

    /// Ticks follow the injected clock: paused tokio time, advanced by the test, runs the
    /// job on each 10-second boundary and, after a reschedule, on the new one only.
    #[tokio::test(start_paused = true)]
    async fn runs_on_the_schedule_of_the_clock_it_is_given() {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let task: Task = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async {}.boxed()
        });
        let clock = Arc::new(TokioClock::new());
        let every_10s = Schedule::parse("*/10 * * * * *").unwrap();
        let t0 = clock.now();
        let mut s = Scheduler::start(&every_10s, task, clock.clone()).await.unwrap();
        let first = s.next_tick().await.unwrap() - t0;
        assert!(first > chrono::TimeDelta::zero() && first <= chrono::TimeDelta::seconds(10), "{first}");
        // Until two seconds after the fourth tick (first, +10, +20, +30): away from any
        // boundary, so nothing races the test's own wake-up.
        tokio::time::sleep((first + chrono::TimeDelta::seconds(32)).to_std().unwrap()).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4, "first tick after {first}");
        let before = runs.load(Ordering::SeqCst);
        // Once a minute, at the second 55 s from now: nothing is due for 54 s whatever the
        // time of day (an hourly schedule made this depend on the hour's boundary).
        use chrono::Timelike;
        let second = (clock.now().second() + 55) % 60;
        s.reschedule(&Schedule::parse(&format!("{second} * * * * *")).unwrap()).await.unwrap();
        let next = s.next_tick().await.unwrap() - clock.now();
        assert!(next > chrono::TimeDelta::seconds(53) && next <= chrono::TimeDelta::seconds(56), "{next}");
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(runs.load(Ordering::SeqCst) - before, 0, "the old schedule stopped");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst) - before, 1, "the new schedule runs");
        s.shutdown().await;
    }
}

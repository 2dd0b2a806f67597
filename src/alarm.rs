//! When an account object's single alarm should next fire.
//!
//! One alarm serves every kind of timed work: expiring jobs past their timeout,
//! (re)trying webhook deliveries, ending timed pauses and pruning old deliveries. The
//! object keeps only the earliest due time of each kind (indexed `MIN()` queries) and
//! asks [`plan_wake`] for the alarm time.
//!
//! Wake times are rounded up to a [`QUANTUM_MS`] grid, so every piece of work due within
//! one quantum shares a wake, and two wakes are never closer than one quantum: an
//! object with thousands of due times still wakes at most 1800 times an hour, and
//! usually far less. Lateness costs nothing visible: the lists filter expired jobs at
//! read time, and retry delays are minimums. The one exception is a backlog: a run
//! that stopped at its limits (attempts per run, prune batch) is followed by the next
//! at once, so 10,000 due deliveries drain at the runs' pace, not 40 per quantum.

/// Alarm granularity.
pub const QUANTUM_MS: i64 = 2_000;

/// The instant the alarm should fire for work due at `due_ms`, not before `now_ms`.
pub fn wake_for(due_ms: i64, now_ms: i64) -> i64 {
    let at = due_ms.max(now_ms);
    let rem = at.rem_euclid(QUANTUM_MS);
    if rem == 0 {
        at
    } else {
        at + (QUANTUM_MS - rem)
    }
}

/// The next alarm time given the earliest due time of each kind of work (job
/// expiry, pending delivery, end of a timed pause, outbox pruning); `None` when there
/// is nothing to wait for (the alarm is deleted).
pub fn plan_wake(due: &[Option<i64>], now_ms: i64) -> Option<i64> {
    let earliest = due.iter().flatten().copied().min()?;
    Some(wake_for(earliest, now_ms))
}

/// The alarm time to set for a wake planned at `at`, given the time the object's last
/// alarm run was for (`fired_ms`: the alarm the object set, or the run's start when it
/// does not know, which is never before it). An alarm set during the handler to the
/// very time that handler runs for is taken by the runtime for "not set again" and
/// deleted when the handler returns (workerd does so), while the object would believe
/// it set: no later work of the account would run until the object is evicted. So a
/// wake planned at or before that time moves to just after it. Outside a handler this
/// costs at most 1 ms: an alarm set in the past fires at once anyway.
pub fn after_last_run(at: i64, fired_ms: Option<i64>) -> i64 {
    match fired_ms {
        Some(fired) if at <= fired => fired + 1,
        _ => at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_planned_for_the_instant_the_alarm_runs_for_moves_just_after_it() {
        // The alarm fired on the grid, at 404_000 exactly, and expired a job there: its
        // webhook is due at once, so the plan is the same instant. Setting that would
        // be undone by the runtime when the handler returns.
        let fired = Some(404_000);
        assert_eq!(after_last_run(wake_for(404_000, 404_000), fired), 404_001);
        assert_eq!(after_last_run(403_000, fired), 404_001);
        // Later wakes, and any wake of an object whose alarm never ran, are untouched.
        assert_eq!(after_last_run(406_000, fired), 406_000);
        assert_eq!(after_last_run(404_000, None), 404_000);
    }

    /// How many times an object wakes for a set of due times, when each wake handles
    /// everything due by then (what the alarm handler does).
    fn count_wakes(due_times_ms: &[i64]) -> usize {
        let mut wakes: Vec<i64> = due_times_ms
            .iter()
            .map(|&d| wake_for(d, i64::MIN))
            .collect();
        wakes.sort_unstable();
        wakes.dedup();
        wakes.len()
    }

    #[test]
    fn wakes_are_rounded_up_to_the_quantum_and_never_in_the_past() {
        assert_eq!(wake_for(10_000, 0), 10_000);
        assert_eq!(wake_for(10_001, 0), 12_000);
        assert_eq!(wake_for(1_000, 50_500), 52_000);
    }

    #[test]
    fn the_earlier_kind_of_work_sets_the_alarm() {
        assert_eq!(plan_wake(&[Some(20_000), Some(8_000)], 0), Some(8_000));
        assert_eq!(plan_wake(&[Some(20_000), None], 0), Some(20_000));
        assert_eq!(plan_wake(&[None, Some(7_000), Some(9_000)], 0), Some(8_000));
        assert_eq!(plan_wake(&[None, None], 0), None);
    }

    /// The figure for the closing note: 100 jobs registered over an hour (one every
    /// 36 s, each expiring at its own time) and 100 deliveries whose retries fall due
    /// in bursts (completions arrive in groups of 10 within a second).
    #[test]
    fn an_object_with_100_jobs_and_100_deliveries_wakes_once_per_distinct_quantum() {
        let expiries: Vec<i64> = (0..100).map(|i| i * 36_000 + 250).collect();
        let retries: Vec<i64> = (0..100)
            .map(|i| (i / 10) * 360_000 + 100 + (i % 10) * 100)
            .collect();
        let all: Vec<i64> = expiries.iter().chain(retries.iter()).copied().collect();
        // 100 spread-out expiries need 100 wakes; 100 retries due in 10 bursts need
        // 10; a burst that falls in the same quantum as an expiry shares its wake.
        assert_eq!(count_wakes(&expiries), 100);
        assert_eq!(count_wakes(&retries), 10);
        assert!(count_wakes(&all) <= 110);
        // However dense the work, wakes are at least a quantum apart.
        let dense: Vec<i64> = (1..=10_000).map(|i| i * 100).collect();
        assert_eq!(count_wakes(&dense), 500);
    }

    /// Replays an hour of one object's alarm with the real planner and retry schedule:
    /// each wake expires the jobs and attempts the deliveries due by then (all failing,
    /// so each is retried per the default schedule) and sets the next alarm. Returns the
    /// number of wakes (= alarms set by the alarm handler).
    fn simulate_hour(job_deadlines: &[i64], delivery_created: &[i64]) -> usize {
        use crate::webhook::RetrySchedule;
        let schedule = RetrySchedule::default();
        let mut jobs: Vec<i64> = job_deadlines.to_vec();
        let mut deliveries: Vec<(i64, u32)> = delivery_created.iter().map(|&t| (t, 0)).collect();
        let mut now = 0;
        let mut wakes = 0;
        loop {
            let earliest_job = jobs.iter().copied().min();
            let earliest_delivery = deliveries.iter().map(|d| d.0).min();
            let Some(wake) = plan_wake(&[earliest_job, earliest_delivery], now) else {
                break;
            };
            if wake > 3_600_000 {
                break;
            }
            now = wake;
            wakes += 1;
            jobs.retain(|&deadline| deadline > now);
            deliveries = deliveries
                .into_iter()
                .filter_map(|(due, attempts)| {
                    if due > now {
                        return Some((due, attempts));
                    }
                    let attempts = attempts + 1;
                    schedule
                        .next_attempt_at(attempts, now)
                        .map(|next| (next, attempts))
                })
                .collect();
        }
        wakes
    }

    /// The figures of the closing note: 100 jobs and 100 pending deliveries, one hour.
    #[test]
    fn one_hour_of_100_jobs_and_100_failing_deliveries() {
        // Jobs expiring one every 36 s through the hour; deliveries to a receiver that
        // is down, all queued in the same second: 100 expiry wakes, and the deliveries'
        // retries (0, 5, 35, 155, 755, 2555 s) add at most 6 more.
        let deadlines: Vec<i64> = (0..100).map(|i| 18_000 + i * 36_000 + 123).collect();
        let burst: Vec<i64> = (0..100).map(|i| 1_000 + i * 7).collect();
        let together = simulate_hour(&deadlines, &burst);
        println!("100 expiring jobs + 100 deliveries queued together: {together} wakes");
        assert!(together <= 106, "{together}");
        // The same deliveries queued one every 36 s instead: each wakes its own retries
        // (up to 6 in the hour, fewer for later ones), sharing a 2 s slot only by chance.
        let spread: Vec<i64> = (0..100).map(|i| 1_000 + i * 36_000).collect();
        let wakes = simulate_hour(&[], &spread);
        println!("100 deliveries queued 36 s apart: {wakes} wakes");
        assert!(wakes <= 600, "{wakes}");
        // Jobs that do not expire within the hour (the default timeout is 2 h) and
        // deliveries that succeed at once: one wake per 2 s slot that saw a completion.
        assert_eq!(simulate_hour(&[], &[]), 0);
    }
}

//! Reactions, made visible: the time from a watch event seen (or a probe result, or the
//! instant time alone changed a node's health) to the answer of the label patches that move
//! gateways away from the node, split into phases — queued (the loop was busy), indexing the
//! batch, planning (probe targets and `reconcile`), label removals, label additions. Every
//! reaction goes into `egressc_reaction_seconds`; one over `--slow-reaction` is logged with
//! its phases and what the loop did in the step before (the usual reason for a long queue).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::time::Instant;

use super::index::Source;

/// Label set `{source}`: one of the watches.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The watch (`Node`, `NodeLease`, …).
    pub source: String,
}

/// The reaction metrics.
#[derive(Debug)]
pub struct ReactionMetrics {
    /// `egressc_reaction_seconds`: watch event seen → label patches answered.
    pub seconds: Histogram,
    /// `egressc_watch_lists_total{source}`: lists per watch (1 each at start; more are
    /// relists after a failed or expired watch, and each stops the writes until complete).
    pub lists: Family<SourceLabel, Counter>,
}

impl ReactionMetrics {
    /// Registers the reaction metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let seconds = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let lists = Family::<SourceLabel, Counter>::default();
        registry.register_with_unit(
            "reaction",
            "From a watch event seen (or a probe result) to the answer of the label patches moving gateways away from the node",
            Unit::Seconds,
            seconds.clone(),
        );
        registry.register(
            "watch_lists",
            "Lists per watch: one at start, every further one a relist",
            lists.clone(),
        );
        ReactionMetrics { seconds, lists }
    }

    /// Counts a list (initial or relist) of `source`.
    pub fn listed(&self, source: Source) {
        self.lists
            .get_or_create(&SourceLabel {
                source: format!("{source:?}"),
            })
            .inc();
    }
}

/// One batch of watch events taken by the loop.
#[derive(Clone, Copy, Debug)]
pub struct Intake {
    /// When the loop took the first event of the batch.
    pub taken: Instant,
    /// When the last event of the batch was indexed.
    pub indexed: Instant,
    /// Events in the batch.
    pub events: usize,
}

impl Intake {
    /// A step that took no events (a wakeup or a retry) starting `at`.
    pub fn none(at: Instant) -> Self {
        Intake {
            taken: at,
            indexed: at,
            events: 0,
        }
    }
}

/// What a step did; the loop takes no events while a step runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepSummary {
    /// When it ended.
    pub ended: Option<Instant>,
    /// How long it took.
    pub took: Duration,
    /// Label patches, status patches and CEGP writes it sent.
    pub labels: usize,
    /// Status patches (gateways and policies).
    pub statuses: usize,
    /// CEGP applies and deletes.
    pub cegps: usize,
}

/// Where a reaction's time went. The phases add up to the whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phases {
    /// Seen → the loop took the batch (it was busy with a step, or the event waited behind
    /// others in the channel).
    pub queued: Duration,
    /// Indexing the batch.
    pub indexing: Duration,
    /// Probe targets and `reconcile`.
    pub planning: Duration,
    /// Label patches removing `active-for-…` labels (all answered before any other is sent).
    pub removals: Duration,
    /// The other label patches.
    pub additions: Duration,
}

impl Phases {
    /// Splits `observed → labelled` at the loop's milestones. A reaction observed after a
    /// milestone (a heartbeat that went stale while planning) has nothing in that phase.
    pub fn split(
        observed: Instant,
        intake: &Intake,
        decided: Instant,
        removed: Instant,
        labelled: Instant,
    ) -> Phases {
        let mut from = observed;
        let mut phase = |to: Instant| {
            let took = to.saturating_duration_since(from);
            from = from.max(to);
            took
        };
        Phases {
            queued: phase(intake.taken),
            indexing: phase(intake.indexed),
            planning: phase(decided),
            removals: phase(removed),
            additions: phase(labelled),
        }
    }

    /// The whole reaction.
    pub fn total(&self) -> Duration {
        self.queued + self.indexing + self.planning + self.removals + self.additions
    }
}

/// Records the reaction to one observation: into the histogram, and into the log when it
/// took longer than `slow`.
pub fn record(
    metrics: &ReactionMetrics,
    slow: Duration,
    gateways: usize,
    phases: Phases,
    intake: &Intake,
    previous: &StepSummary,
) {
    let total = phases.total();
    metrics.seconds.observe(total.as_secs_f64());
    if total > slow {
        tracing::warn!(
            reaction = ?total,
            gateways,
            queued = ?phases.queued,
            indexing = ?phases.indexing,
            planning = ?phases.planning,
            removals = ?phases.removals,
            additions = ?phases.additions,
            batch = intake.events,
            previous_step_took = ?previous.took,
            previous_step_labels = previous.labels,
            previous_step_statuses = previous.statuses,
            previous_step_cegps = previous.cegps,
            "slow reaction"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn phases_split_the_reaction_at_the_loops_milestones() {
        let t0 = Instant::now();
        let intake = Intake {
            taken: t0 + ms(40),
            indexed: t0 + ms(41),
            events: 3,
        };
        let phases = Phases::split(t0, &intake, t0 + ms(43), t0 + ms(50), t0 + ms(56));
        assert_eq!(
            phases,
            Phases {
                queued: ms(40),
                indexing: ms(1),
                planning: ms(2),
                removals: ms(7),
                additions: ms(6),
            }
        );
        assert_eq!(phases.total(), ms(56));
    }

    #[test]
    fn a_reaction_observed_while_planning_has_no_queue() {
        let t0 = Instant::now();
        let intake = Intake::none(t0);
        let phases = Phases::split(t0 + ms(5), &intake, t0 + ms(8), t0 + ms(10), t0 + ms(10));
        assert_eq!(phases.queued, Duration::ZERO);
        assert_eq!(phases.indexing, Duration::ZERO);
        assert_eq!(phases.planning, ms(3));
        assert_eq!(phases.total(), ms(5));
    }

    #[test]
    fn reactions_fill_the_histogram() {
        let mut registry = Registry::with_prefix("egressc");
        let metrics = ReactionMetrics::register(&mut registry);
        let t0 = Instant::now();
        let phases = Phases::split(t0, &Intake::none(t0), t0, t0 + ms(2), t0 + ms(3));
        record(
            &metrics,
            ms(100),
            1,
            phases,
            &Intake::none(t0),
            &StepSummary::default(),
        );
        metrics.listed(Source::Node);
        metrics.listed(Source::Node);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(
            text.contains(r#"egressc_reaction_seconds_bucket{le="0.005"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"egressc_reaction_seconds_bucket{le="0.0025"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"egressc_watch_lists_total{source="Node"} 2"#),
            "{text}"
        );
    }
}

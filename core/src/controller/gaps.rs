//! Observation gaps are not evidence. Time in which the controller could not observe the
//! cluster never counts toward a node's heartbeat staleness or a VIP holder's Lease staleness:
//!
//! - **Resync**: when the caches become complete again after a gap (watch down, relisting, API
//!   outage), every clock restarts: heartbeats and VIP Leases count as seen changing at that
//!   instant, so a node gets a full `node_lease_grace` from the first moment it can be
//!   observed again (its kubelet could not renew during an outage either).
//! - **Progress**: a heartbeat past its grace is only stale once some *other* node's heartbeat
//!   was seen changing at least half a grace after it. While no heartbeat moves at all (a
//!   watch that stalled without failing, kubelets cut off from the API), silence proves
//!   nothing. With kubelet's 10 s renewal and the 20 s default grace this adds no delay.
//! - **Disruption**: when at least [`DISRUPTION_MIN_NODES`] and at least
//!   [`DISRUPTION_PERCENT`] % of the nodes with a heartbeat are stale at once, the loss is
//!   taken for lost observation (kubelets cannot reach the API), not for failed nodes: no
//!   node is unhealthy for its heartbeat (the numbers of the Kubernetes node lifecycle
//!   controller's partial disruption: `--unhealthy-zone-threshold` 0.55, more than 2 nodes).
//!   When it ends, the clocks restart as after a resync.
//!
//! Direct probe results do not go through the API: they stay evidence during a gap. Writing
//! still waits for synced caches (`reconcile` plans nothing before).

use std::collections::BTreeSet;

use super::health::View;
use super::state::Controller;
use super::time::Instant;

/// Fewest stale heartbeats that can mean lost observation rather than failed nodes.
pub const DISRUPTION_MIN_NODES: usize = 3;
/// Share of the nodes with a heartbeat (in percent) that must be stale at once.
pub const DISRUPTION_PERCENT: usize = 55;

/// Do `stale` of `population` heartbeats look like lost observation?
pub(super) fn is_disruption(stale: usize, population: usize) -> bool {
    stale >= DISRUPTION_MIN_NODES && stale * 100 >= population * DISRUPTION_PERCENT
}

/// A change of disruption mode, carried out of the pure core in [`super::Plan::disruption`] for
/// the shell to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DisruptionChange {
    /// Disruption mode entered (true) or left (false).
    pub disrupted: bool,
    /// Nodes whose heartbeat was overdue when it changed.
    pub stale: usize,
    /// Nodes with a Node object and a heartbeat.
    pub nodes: usize,
}

/// What `gaps` keeps about the state of observation.
#[derive(Clone, Debug, Default)]
pub(super) struct Observation {
    /// The latest instant any node's heartbeat was seen changing.
    pub last_beat: Option<Instant>,
    /// See [`is_disruption`].
    pub disrupted: bool,
    /// How many nodes have a Node object and a heartbeat (`NodeHealth::counted`).
    pub population: usize,
    /// Among them, how many have their heartbeat overdue (stale unless disrupted;
    /// `NodeHealth::overdue`).
    pub overdue: usize,
    /// (last heartbeat, node) of nodes past their grace without progress evidence: judged
    /// again when a later heartbeat arrives.
    pub awaiting_progress: BTreeSet<(Instant, String)>,
    /// The latest change of disruption mode not yet handed out in a plan.
    pub pending_change: Option<DisruptionChange>,
}

impl Controller {
    /// The view health is judged against at `now`.
    pub(super) fn view(&self, now: Instant) -> View {
        View {
            now,
            timing: self.timing,
            last_beat: self.observation.last_beat,
            disrupted: self.observation.disrupted,
            synced: self.synced,
        }
    }

    /// A heartbeat was seen changing at `now`: nodes that were waiting for progress evidence
    /// and are now proven silent. Returns them for [`Controller::retrack`].
    pub(super) fn heartbeat_progressed(&mut self, now: Instant) -> Vec<String> {
        let observation = &mut self.observation;
        observation.last_beat = Some(observation.last_beat.map_or(now, |b| b.max(now)));
        let half = self.timing.node_lease_grace / 2;
        let mut proven = Vec::new();
        while let Some((seen, _)) = observation.awaiting_progress.first() {
            if now < *seen + half {
                break;
            }
            if let Some((_, name)) = observation.awaiting_progress.pop_first() {
                proven.push(name);
            }
        }
        proven
    }

    /// Updates the heartbeat bookkeeping of node `name` under `view`.
    fn track(&mut self, name: &str, view: &View) {
        let Some(health) = self.nodes.get_mut(name) else {
            return;
        };
        let observation = &mut self.observation;
        let counted = health.node.is_some() && health.heartbeat.is_some();
        let overdue = counted && health.heartbeat_overdue(view);
        set_membership(&mut observation.population, &mut health.counted, counted);
        set_membership(&mut observation.overdue, &mut health.overdue, overdue);
        let awaiting = health
            .heartbeat
            .as_ref()
            .filter(|_| counted && health.heartbeat_unconfirmed(view))
            .map(|(_, seen)| *seen);
        if awaiting != health.awaiting_progress {
            if let Some(old) = health.awaiting_progress.take() {
                observation
                    .awaiting_progress
                    .remove(&(old, name.to_owned()));
            }
            if let Some(seen) = awaiting {
                observation
                    .awaiting_progress
                    .insert((seen, name.to_owned()));
            }
            health.awaiting_progress = awaiting;
        }
    }

    /// Re-judges `names` at `now` (their state or time changed): bookkeeping first, then
    /// disruption (which may re-judge every node), then health; marks them dirty.
    pub(super) fn retrack(&mut self, now: Instant, names: Vec<String>) {
        let view = self.view(now);
        for name in &names {
            self.track(name, &view);
        }
        if self.update_disruption(now) {
            self.evaluate_all(now);
            return;
        }
        let view = self.view(now);
        for name in names {
            self.evaluate_node(&name, &view);
        }
    }

    /// Recomputes the disruption state; when it ends, the clocks restart. True if it flipped.
    fn update_disruption(&mut self, now: Instant) -> bool {
        let observation = &self.observation;
        let disrupted = is_disruption(observation.overdue, observation.population);
        if disrupted == observation.disrupted {
            return false;
        }
        self.observation.pending_change = Some(DisruptionChange {
            disrupted,
            stale: observation.overdue,
            nodes: observation.population,
        });
        self.observation.disrupted = disrupted;
        if !disrupted {
            self.restart_clocks(now);
        }
        true
    }

    /// Observation resumes at `now`: every heartbeat and VIP Lease counts as seen changing no
    /// earlier than `now`.
    pub(super) fn restart_clocks(&mut self, now: Instant) {
        for health in self.nodes.values_mut() {
            if let Some((_, seen)) = &mut health.heartbeat {
                *seen = (*seen).max(now);
            }
        }
        for lease in self.vip_leases.values_mut() {
            lease.last_change = lease.last_change.max(now);
        }
        let view = self.view(now);
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for name in &names {
            self.track(name, &view);
        }
        // Nothing is overdue right after a restart.
        self.observation.disrupted = false;
    }
}

/// Sets a node's `flag` to `member`, keeping `total` the number of nodes with the flag set.
fn set_membership(total: &mut usize, flag: &mut bool, member: bool) {
    match (*flag, member) {
        (false, true) => *total += 1,
        (true, false) => *total -= 1,
        _ => {}
    }
    *flag = member;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disruption_needs_three_nodes_and_55_percent() {
        assert!(!is_disruption(2, 2), "two of two: too few to tell");
        assert!(!is_disruption(2, 3));
        assert!(is_disruption(3, 3));
        assert!(is_disruption(3, 5));
        assert!(!is_disruption(3, 6));
        assert!(is_disruption(55, 100));
        assert!(!is_disruption(54, 100));
    }
}

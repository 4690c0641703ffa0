//! Agent rules of docs/lease-protocol.md, one example each, plus the lifetime arithmetic.

use std::time::Duration;

use super::*;

const ME: &str = "node-a";
const OTHER: &str = "node-b";

fn view(grant: Option<&str>, holder: Option<&str>, ready: Option<&str>) -> LeaseView {
    LeaseView {
        resource_version: "7".into(),
        grant: grant.map(str::to_owned),
        holder: holder.map(str::to_owned),
        ready: ready.map(str::to_owned),
        takeover: false,
    }
}

fn at(secs: f64) -> Instant {
    Instant::from_secs_f64(secs)
}

fn holding(sent: f64, vip_up: bool) -> Local {
    Local {
        last_successful_send: Some(at(sent)),
        last_attempt: Some(at(sent)),
        vip_up,
        ..Local::default()
    }
}

fn run(lease: Option<&LeaseView>, now: f64, local: &Local) -> Action {
    decide(lease, ME, at(now), local, &AgentTiming::default())
}

#[test]
fn rule1_acquires_when_granted_and_free() {
    let lease = view(Some(ME), None, None);
    assert_eq!(run(Some(&lease), 10.0, &Local::default()), Action::Acquire);
}

#[test]
fn rule6_never_acquires_while_another_node_holds_however_old_its_renewal() {
    let lease = view(Some(ME), Some(OTHER), None);
    for now in [0.0, 3.0, 1000.0] {
        assert_eq!(
            run(Some(&lease), now, &Local::default()),
            Action::Wait { wake: None }
        );
    }
}

#[test]
fn no_grant_no_holder_waits() {
    let lease = view(None, None, None);
    assert_eq!(
        run(Some(&lease), 1.0, &Local::default()),
        Action::Wait { wake: None }
    );
    let granted_elsewhere = view(Some(OTHER), None, None);
    assert_eq!(
        run(Some(&granted_elsewhere), 1.0, &Local::default()),
        Action::Wait { wake: None }
    );
}

#[test]
fn rule2_marks_ready_at_once_after_the_vip_is_up() {
    let lease = view(Some(ME), Some(ME), None);
    assert_eq!(
        run(Some(&lease), 10.01, &holding(10.0, true)),
        Action::Renew { mark_ready: true }
    );
    // After a failed write it waits like any retry.
    let failed_since = Local {
        last_attempt: Some(at(10.2)),
        ..holding(10.0, true)
    };
    assert_eq!(
        run(Some(&lease), 10.3, &failed_since),
        Action::Wait {
            wake: Some(at(10.7))
        }
    );
    assert_eq!(
        run(Some(&lease), 10.7, &failed_since),
        Action::Renew { mark_ready: true }
    );
    // Not before the VIP is up: the renewal waits for its interval.
    assert_eq!(
        run(Some(&lease), 10.01, &holding(10.0, false)),
        Action::Wait {
            wake: Some(at(10.5))
        }
    );
}

#[test]
fn rule3_renews_every_interval_and_not_sooner() {
    let lease = view(Some(ME), Some(ME), Some(ME));
    let local = holding(10.0, true);
    assert_eq!(
        run(Some(&lease), 10.2, &local),
        Action::Wait {
            wake: Some(at(10.5))
        }
    );
    assert_eq!(
        run(Some(&lease), 10.5, &local),
        Action::Renew { mark_ready: false }
    );
}

#[test]
fn failed_writes_are_retried_at_the_renew_pace() {
    let lease = view(Some(ME), None, None);
    let failed = Local {
        last_successful_send: None,
        last_attempt: Some(at(5.0)),
        ..Local::default()
    };
    assert_eq!(
        run(Some(&lease), 5.1, &failed),
        Action::Wait {
            wake: Some(at(5.5))
        }
    );
    assert_eq!(run(Some(&lease), 5.5, &failed), Action::Acquire);
}

#[test]
fn restart_with_grant_and_holder_me_renews_before_bringing_the_vip_up() {
    let lease = view(Some(ME), Some(ME), Some(ME));
    assert_eq!(
        run(Some(&lease), 1.0, &Local::default()),
        Action::Renew { mark_ready: false }
    );
}

#[test]
fn rule4_releases_when_the_grant_is_withdrawn_or_moved() {
    for grant in [None, Some(OTHER)] {
        let lease = view(grant, Some(ME), Some(ME));
        assert_eq!(
            run(Some(&lease), 10.1, &holding(10.0, true)),
            Action::Release
        );
        // After a restart (nothing held locally) it still clears the Lease.
        assert_eq!(run(Some(&lease), 10.1, &Local::default()), Action::Release);
    }
}

#[test]
fn release_write_that_failed_is_retried_paced() {
    let lease = view(None, Some(ME), Some(ME));
    let dropped = Local {
        last_successful_send: None,
        last_attempt: Some(at(4.0)),
        ..Local::default()
    };
    assert_eq!(
        run(Some(&lease), 4.2, &dropped),
        Action::Wait {
            wake: Some(at(4.5))
        }
    );
    assert_eq!(run(Some(&lease), 4.5, &dropped), Action::Release);
}

#[test]
fn rule5_steps_down_on_a_foreign_holder_or_a_vanished_lease() {
    let taken = view(Some(OTHER), Some(OTHER), None);
    assert_eq!(
        run(Some(&taken), 10.1, &holding(10.0, true)),
        Action::StepDown
    );
    let taken_over_but_granted = view(Some(ME), Some(OTHER), None);
    assert_eq!(
        run(Some(&taken_over_but_granted), 10.1, &holding(10.0, true)),
        Action::StepDown
    );
    let no_holder_no_grant = view(None, None, None);
    assert_eq!(
        run(Some(&no_holder_no_grant), 10.1, &holding(10.0, true)),
        Action::StepDown
    );
    assert_eq!(run(None, 10.1, &holding(10.0, true)), Action::StepDown);
    assert_eq!(
        run(None, 10.1, &Local::default()),
        Action::Wait { wake: None }
    );
}

#[test]
fn shutdown_releases_only_what_this_node_holds() {
    assert_eq!(
        decide_shutdown(Some(&view(Some(ME), Some(ME), Some(ME))), ME),
        Action::Release
    );
    assert_eq!(
        decide_shutdown(Some(&view(Some(ME), Some(OTHER), None)), ME),
        Action::StepDown
    );
    assert_eq!(decide_shutdown(None, ME), Action::StepDown);
}

#[test]
fn lifetime_is_what_is_left_of_l_since_the_send_rounded_down() {
    let l = Duration::from_secs(2);
    let secs = |now: f64, sent: f64| address_lifetime(at(now), at(sent), l).map(|x| x.valid_secs);
    assert_eq!(secs(10.0, 10.0), Some(2));
    assert_eq!(secs(10.01, 10.0), Some(1));
    assert_eq!(secs(10.99, 10.0), Some(1));
    assert_eq!(secs(11.0, 10.0), Some(1));
    assert_eq!(secs(11.01, 10.0), None);
    assert_eq!(secs(15.0, 10.0), None);
    let both = address_lifetime(at(10.2), at(10.0), Duration::from_secs(5));
    assert_eq!(
        both,
        Some(Lifetimes {
            valid_secs: 4,
            preferred_secs: 4
        })
    );
}

#[test]
fn rule7_holds_through_failed_renewals_only_while_up_and_not_yielded() {
    let failing = Local {
        renew_failing: true,
        ..holding(10.0, true)
    };
    assert!(outage_hold(&failing));
    assert!(!outage_hold(&holding(10.0, true)), "renewals succeed");
    let down = Local {
        renew_failing: true,
        ..holding(10.0, false)
    };
    assert!(!outage_hold(&down), "an address that is gone is not held");
    let yielded = Local {
        yielded: true,
        ..failing
    };
    assert!(!outage_hold(&yielded));
    assert!(!outage_hold(&Local {
        renew_failing: true,
        ..Local::default()
    }));
    // Failing renewals are still attempted at the renew pace.
    let lease = view(Some(ME), Some(ME), Some(ME));
    assert_eq!(
        run(Some(&lease), 10.5, &failing),
        Action::Renew { mark_ready: false }
    );
}

#[test]
fn rule7_a_holder_that_yielded_releases_the_lease() {
    let lease = view(Some(ME), Some(ME), Some(ME));
    let yielded = Local {
        yielded: true,
        ..holding(10.0, true)
    };
    assert_eq!(run(Some(&lease), 10.1, &yielded), Action::Release);
    // Once dropped, the release is retried at the renew pace until the API takes it.
    let dropped = Local {
        last_attempt: Some(at(12.0)),
        yielded: true,
        ..Local::default()
    };
    assert_eq!(
        run(Some(&lease), 12.1, &dropped),
        Action::Wait {
            wake: Some(at(12.5))
        }
    );
    assert_eq!(run(Some(&lease), 12.5, &dropped), Action::Release);
}

#[test]
fn rule8_only_a_bring_up_after_a_graceful_acquire_skips_the_probe() {
    assert!(bring_up_needs_probe(&Local::default()));
    assert!(!bring_up_needs_probe(&Local {
        graceful_bring_up: true,
        ..Local::default()
    }));
}

#[test]
fn the_allowance_needs_a_fresh_write_once_the_vip_is_up() {
    let timing = AgentTiming::default();
    let up = holding(10.0, true);
    let one = Some(Lifetimes {
        valid_secs: 1,
        preferred_secs: 1,
    });
    assert_eq!(allowance(at(10.1), &up, true, &timing), one);
    assert_eq!(allowance(at(10.1), &up, false, &timing), None);
    // A bring-up held back by a probe round is retried on the last write's allowance …
    let pending = holding(10.0, false);
    assert_eq!(allowance(at(10.6), &pending, false, &timing), one);
    // … until less than a second is left.
    assert_eq!(allowance(at(11.1), &pending, false, &timing), None);
    assert_eq!(allowance(at(10.1), &Local::default(), true, &timing), None);
}

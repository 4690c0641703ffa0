//! How long a replica may still act as the leader after one look at the leader Lease.
//!
//! kube-lease-manager keeps saying "leader" while its renewals fail (it logs the error and
//! retries), so after an API outage longer than the Lease two replicas could both believe they
//! lead: the standby took the expired Lease, the old leader never heard it lost it. client-go
//! closes that hole with a renew deadline; egressc closes it with this fence. The shell reads
//! the Lease every few hundred milliseconds; each read that shows this replica as the holder
//! extends its right to write until the moment a standby could take the Lease, less a margin;
//! a failed, slow or contrary read extends nothing. Writes are sent only while the fence holds
//! (`egressc::sync::leader`).
//!
//! A standby acquires an expired Lease only when `renewTime + leaseDurationSeconds` has passed
//! on its own clock; the margin absorbs the difference between its clock and ours and the
//! time a write takes to land.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;

/// How much earlier than a standby could take over the fence closes.
pub fn margin(lease_duration: Duration) -> Duration {
    (lease_duration / 6).max(Duration::from_millis(250))
}

/// How long after `read_sent_at` (the wall-clock time the read that returned `lease` was sent)
/// `identity` may still write as the leader; `None` when the read does not show it holding an
/// unexpired Lease.
pub fn valid_for(
    lease: &Lease,
    identity: &str,
    lease_duration: Duration,
    read_sent_at: Timestamp,
) -> Option<Duration> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(lease_duration, Duration::from_secs)
        .min(lease_duration);
    let renewed_ago = read_sent_at.duration_since(renewed);
    // A renewal stamped after the read was sent (our own clock moved back, or the read raced
    // a renewal) counts as made at the send.
    let renewed_ago = Duration::try_from(renewed_ago).unwrap_or(Duration::ZERO);
    duration
        .checked_sub(renewed_ago)?
        .checked_sub(margin(lease_duration))
        .filter(|left| !left.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    const D: Duration = Duration::from_secs(3);

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(1_700_000_000_000 + ms).expect("in range")
    }

    fn lease(holder: Option<&str>, renewed_ms: Option<i64>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(3),
                renew_time: renewed_ms.map(|ms| MicroTime(at(ms))),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_fresh_renewal_by_us_is_valid_until_a_standby_could_take_over_less_the_margin() {
        let left = valid_for(&lease(Some("a"), Some(0)), "a", D, at(1_000));
        assert_eq!(left, Some(Duration::from_millis(1_500)));
    }

    #[test]
    fn another_holder_an_empty_lease_or_no_renewal_give_nothing() {
        assert_eq!(valid_for(&lease(Some("b"), Some(0)), "a", D, at(0)), None);
        assert_eq!(valid_for(&lease(None, Some(0)), "a", D, at(0)), None);
        assert_eq!(valid_for(&lease(Some("a"), None), "a", D, at(0)), None);
        assert_eq!(valid_for(&Lease::default(), "a", D, at(0)), None);
    }

    #[test]
    fn a_renewal_older_than_the_duration_less_the_margin_gives_nothing() {
        assert_eq!(
            valid_for(&lease(Some("a"), Some(0)), "a", D, at(2_500)),
            None
        );
        assert_eq!(
            valid_for(&lease(Some("a"), Some(0)), "a", D, at(9_000)),
            None
        );
    }

    #[test]
    fn a_renewal_stamped_after_the_read_counts_from_the_read() {
        let left = valid_for(&lease(Some("a"), Some(700)), "a", D, at(0));
        assert_eq!(left, Some(Duration::from_millis(2_500)));
    }

    #[test]
    fn a_longer_lease_on_the_object_does_not_extend_our_own_duration() {
        let mut long = lease(Some("a"), Some(0));
        long.spec.as_mut().unwrap().lease_duration_seconds = Some(60);
        assert_eq!(
            valid_for(&long, "a", D, at(0)),
            Some(Duration::from_millis(2_500))
        );
    }
}

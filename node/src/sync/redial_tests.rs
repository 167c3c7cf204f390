//! The redial schedule on paused time: how long a district waits after each kind
//! of ending, that a refused port is probed without growing the backoff, and that
//! a district dials within [`PROBE_MAX`] of the hub's port answering again however
//! long it was down.

use std::cell::Cell;
use std::time::Duration;

use mart_proto::tonic::Status;
use tokio::time::Instant;

use super::redial::*;
use super::{DriveError, SessionError};

/// The wait `redial` takes after `ending`, with probes answered by `probes` in turn
/// (the last one repeated).
async fn timed_wait(redial: &mut Redial, ending: Ending, probes: &[Probe]) -> (Duration, usize) {
    let calls = Cell::new(0);
    let started = Instant::now();
    redial
        .wait(ending, || {
            let n = calls.get();
            calls.set(n + 1);
            let answer = probes[n.min(probes.len() - 1)];
            async move { answer }
        })
        .await;
    (started.elapsed(), calls.get())
}

fn full(failures: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32 << failures.min(16))
        .min(BACKOFF_CAP)
}

#[test]
fn backoff_grows_jittered_and_capped() {
    for failures in 0..40 {
        let d = backoff(failures);
        let full = full(failures);
        assert!(
            d >= full / 2 && d <= full,
            "{failures}: {d:?} outside [{:?}, {full:?}]",
            full / 2
        );
    }
    assert!(backoff(30) <= BACKOFF_CAP);
}

#[test]
fn probes_are_jittered_within_their_interval() {
    let waits: Vec<Duration> = (0..1_000).map(|_| probe_interval()).collect();
    assert!(waits.iter().all(|w| (PROBE_MIN..=PROBE_MAX).contains(w)));
    let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
    // Spread over most of the interval: a thousand districts do not probe in step.
    assert!(
        *max - *min > (PROBE_MAX - PROBE_MIN) * 3 / 4,
        "{min:?}..{max:?}"
    );
}

#[test]
fn endings_are_told_apart_by_what_the_hub_paid() {
    let drop = || Err(DriveError::Link("reset".into()));
    assert_eq!(Ending::of(&Ok(()), true), Ending::Closed);
    assert_eq!(Ending::of(&drop(), false), Ending::Unreached);
    assert_eq!(Ending::of(&drop(), true), Ending::Dropped);
    assert_eq!(
        Ending::of(&Err(DriveError::PeerClosed), true),
        Ending::Dropped
    );
    let inbound = |s: Status| Ending::of(&Err(DriveError::Inbound(s)), true);
    assert_eq!(inbound(Status::unavailable("h2 reset")), Ending::Dropped);
    assert_eq!(
        inbound(Status::unknown("h2 protocol error")),
        Ending::Dropped
    );
    assert_eq!(inbound(Status::aborted("a newer session")), Ending::Refused);
    assert_eq!(
        inbound(Status::invalid_argument("bad hello")),
        Ending::Refused
    );
    assert_eq!(
        inbound(Status::permission_denied("not yours")),
        Ending::Refused
    );
    let session = Err(DriveError::Session(SessionError::Protocol {
        peer: "kupang".into(),
        reason: "garbage".into(),
    }));
    assert_eq!(Ending::of(&session, true), Ending::Refused);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_reached_the_hub_resets_the_backoff() {
    let mut redial = Redial::default();
    for _ in 0..10 {
        timed_wait(&mut redial, Ending::Refused, &[]).await;
    }
    assert_eq!(redial.failures(), 10);
    let (waited, probes) = timed_wait(&mut redial, Ending::Dropped, &[]).await;
    assert_eq!((redial.failures(), probes), (1, 0));
    assert!(waited <= BACKOFF_START, "{waited:?}");
    timed_wait(&mut redial, Ending::Refused, &[]).await;
    let (waited, _) = timed_wait(&mut redial, Ending::Closed, &[]).await;
    assert_eq!((redial.failures(), waited), (0, BACKOFF_START));
}

#[tokio::test(start_paused = true)]
async fn failures_that_cost_the_hub_work_back_off_to_the_cap() {
    let mut redial = Redial::default();
    for failures in 0..12 {
        let (waited, _) = timed_wait(&mut redial, Ending::Refused, &[]).await;
        let full = full(failures);
        assert!(
            waited >= full / 2 && waited <= full,
            "{failures}: {waited:?}"
        );
    }
    // A dial that failed although the port answered right after (a TLS refusal) or
    // whose probe met a silent host backs off too, from where the count stands.
    for probe in [Probe::Answered, Probe::Silent] {
        let (waited, probes) = timed_wait(&mut redial, Ending::Unreached, &[probe]).await;
        assert_eq!(probes, 1);
        assert!(waited >= BACKOFF_CAP / 2, "{probe:?}: {waited:?}");
    }
    assert_eq!(redial.failures(), 14);
}

#[tokio::test(start_paused = true)]
async fn a_refused_port_is_probed_without_growing_the_backoff() {
    let mut redial = Redial::default();
    for _ in 0..3 {
        timed_wait(&mut redial, Ending::Refused, &[]).await;
    }
    let mut probes = vec![Probe::Refused; 20];
    probes.push(Probe::Answered);
    let (waited, calls) = timed_wait(&mut redial, Ending::Unreached, &probes).await;
    assert_eq!(calls, 21);
    assert!(
        waited >= PROBE_MIN * 20 && waited <= PROBE_MAX * 20,
        "{waited:?}"
    );
    // The hub answered again: dialed at once, the count untouched.
    assert_eq!(redial.failures(), 3);
}

#[tokio::test(start_paused = true)]
async fn after_any_outage_the_district_dials_within_a_probe_of_the_hub_answering() {
    for outage_secs in [1u64, 7, 31, 300, 3_600, 86_400] {
        let mut redial = Redial::default();
        let started = Instant::now();
        let back = started + Duration::from_secs(outage_secs);
        let mut probes = 0u32;
        redial
            .wait(Ending::Unreached, || {
                probes += 1;
                let answer = if Instant::now() >= back {
                    Probe::Answered
                } else {
                    Probe::Refused
                };
                async move { answer }
            })
            .await;
        let late = Instant::now() - back;
        assert!(
            late <= PROBE_MAX,
            "after {outage_secs} s down: {late:?} late"
        );
        assert_eq!(redial.failures(), 0);
        // At most one probe per PROBE_MIN: what the hub's kernel answers while down.
        assert!(u64::from(probes) <= outage_secs / PROBE_MIN.as_secs() + 2);
    }
}

#[tokio::test]
async fn the_probe_tells_a_refused_port_from_a_listening_one() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(probe("127.0.0.1", port).await, Probe::Answered);
    drop(listener);
    assert_eq!(probe("127.0.0.1", port).await, Probe::Refused);
}

#[test]
fn the_probe_dials_the_hub_url_host_and_port() {
    let target = |url: &str| probe_target(url);
    assert_eq!(
        target("https://localhost:7443"),
        Some(("localhost".into(), 7443))
    );
    assert_eq!(
        target("https://hub.ntt.example"),
        Some(("hub.ntt.example".into(), 443))
    );
    assert_eq!(target("http://10.0.0.1"), Some(("10.0.0.1".into(), 80)));
    assert_eq!(target("https://[::1]:50051"), Some(("::1".into(), 50051)));
    assert_eq!(target("not a url"), None);
}

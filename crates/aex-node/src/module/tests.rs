//! Tests of a module's reply slot: which answer a request takes, and how long it waits.

use aex_proto::Sealed;

use super::*;

#[test]
fn a_command_request_takes_only_the_answer_to_its_own_counter() {
    let reply = |counter| {
        FromModule::CommandReply(Sealed {
            counter,
            ciphertext: vec![],
        })
    };
    let wants = Expect::Command(5);
    assert!(wants.matches(&reply(5)));
    assert!(wants.matches(&FromModule::CommandRejected { counter: 5 }));
    // The late answer to a command whose request gave up: not this one's.
    assert!(!wants.matches(&reply(3)));
    assert!(!wants.matches(&FromModule::CommandRejected { counter: 4 }));
    assert!(!wants.matches(&FromModule::AttestRefused));
    assert!(Expect::Stats.matches(&FromModule::Stats(Default::default())));
}

/// A module that answers `pace` after `steps` signs of progress, one per `pace`; `None`: it
/// only ever shows progress. Returns the request's outcome and how long it took.
async fn request_with_progress(
    limit: Duration,
    pace: Duration,
    steps: Option<u32>,
) -> (Result<FromModule, WireError>, Duration, u32) {
    let (module, mut input) = Module::detached(AppId([1; 16]), "vault", 1 << 20);
    let replies = module.replies.clone();
    let worker = tokio::spawn(async move {
        // The command reaches the module's input; then it commits, chunk by chunk.
        input.recv().await.expect("the command");
        let mut done = 0;
        while steps.is_none_or(|n| done < n) {
            tokio::time::sleep(pace).await;
            lock(&replies).progressed();
            done += 1;
        }
        tokio::time::sleep(pace).await;
        if let Some(w) = lock(&replies).waiting.take() {
            let _ = w.reply.send(FromModule::Stats(Default::default()));
        }
        input
    });
    let started = Instant::now();
    let mut told = 0;
    let outcome = module
        .request_all(vec![ToModule::Stats], Expect::Stats, limit, |_| told += 1)
        .await;
    let took = started.elapsed();
    if steps.is_none() {
        worker.abort();
    }
    (outcome, took, told)
}

/// A persistent module storing a large state before it answers: each stored chunk restarts
/// the limit, so the answer is taken long after the limit itself, and the request's caller
/// (which tells the deployer) hears of each step.
#[tokio::test(start_paused = true)]
async fn progress_restarts_the_limit() {
    let limit = Duration::from_secs(10);
    let (outcome, took, told) = request_with_progress(limit, Duration::from_secs(6), Some(8)).await;
    assert!(matches!(outcome, Ok(FromModule::Stats(_))), "{outcome:?}");
    assert_eq!(took, Duration::from_secs(54));
    assert_eq!(told, 8);
}

/// Silence after progress still fails the request, one limit after the last step, and the
/// error says the module stopped making progress.
#[tokio::test(start_paused = true)]
async fn silence_after_progress_fails_one_limit_after_the_last_step() {
    let limit = Duration::from_secs(10);
    let (outcome, took, _) = request_with_progress(limit, Duration::from_secs(11), Some(1)).await;
    // The first step comes 11 s in, after the limit: the request had failed already.
    let e = outcome.unwrap_err();
    assert_eq!(took, limit);
    assert!(e.message.contains("did not answer within 10 s"), "{e}");

    let (outcome, took, _) = request_with_progress(limit, Duration::from_secs(4), Some(2)).await;
    assert!(outcome.is_ok());
    assert_eq!(took, Duration::from_secs(12));

    // Steps at 4 s and 8 s, then a reply that never comes: the wait ends at 18 s.
    let (module, mut input) = Module::detached(AppId([1; 16]), "vault", 1 << 20);
    let replies = module.replies.clone();
    let _worker = tokio::spawn(async move {
        input.recv().await.expect("the command");
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            lock(&replies).progressed();
        }
        // Holds the input open, answering nothing.
        std::future::pending::<()>().await;
        drop(input);
    });
    let started = Instant::now();
    let e = module
        .request_all(vec![ToModule::Stats], Expect::Stats, limit, |_| ())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(18));
    assert!(
        e.message.contains(
            "stopped making progress: nothing for 10 s after it last stored sealed state"
        ),
        "{e}"
    );
}

/// A module that shows progress for ever is given up on at `MAX_STRETCH` limits.
#[tokio::test(start_paused = true)]
async fn progress_stretches_a_wait_only_so_far() {
    let limit = Duration::from_secs(10);
    let (outcome, took, _) = request_with_progress(limit, Duration::from_secs(1), None).await;
    let e = outcome.unwrap_err();
    assert_eq!(took, limit * MAX_STRETCH);
    assert!(
        e.message.contains("kept storing sealed state for 300 s"),
        "{e}"
    );
}

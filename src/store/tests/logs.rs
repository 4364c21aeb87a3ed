//! Log lines: batched writes, queries, pruning, the tracing layer and back-pressure.

use super::*;

#[tokio::test]
async fn every_appended_line_is_stored_after_flush() {
    const LINES: i64 = 100_000;
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "node1", Trigger::Manual, at(0))
        .await
        .unwrap();
    let started = crate::clock::Clock::System.instant();
    for i in 0..LINES {
        let line = if i % 2 == 0 {
            LogLine::job(at(i), job.id, LogLevel::Info, format!("line {i}"))
        } else {
            LogLine::system(at(i), LogLevel::Info, format!("line {i}"))
        };
        store.append_log(line);
    }
    store.flush().await.unwrap();
    let elapsed = started.elapsed();
    #[allow(clippy::cast_precision_loss)] // A rate for a person to read.
    let rate = LINES as f64 / elapsed.as_secs_f64();
    eprintln!("stored {LINES} log lines in {elapsed:?} ({rate:.0} lines/s)");
    assert_eq!(count(store.path(), "SELECT COUNT(*) FROM logs"), LINES);
    assert_eq!(
        count(store.path(), "SELECT COUNT(DISTINCT message) FROM logs"),
        LINES
    );
    assert_eq!(store.lost_log_lines(), 0);
}

#[tokio::test]
async fn log_queries_filter_limit_and_order() {
    let (store, _dir) = fresh().await;
    let (a, b) = (instance("a"), instance("b"));
    let a1 = store
        .create_job(&a, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let b1 = store
        .create_job(&b, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let a2 = store
        .create_job(&a, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    for i in 0..5 {
        store.append_log(
            LogLine::job(at(i), a1.id, LogLevel::Info, format!("a1-{i}")).with_target("volume:x"),
        );
        store.append_log(LogLine::job(
            at(i),
            b1.id,
            LogLevel::Info,
            format!("b1-{i}"),
        ));
        store.append_log(LogLine::job(
            at(i),
            a2.id,
            LogLevel::Warn,
            format!("a2-{i}"),
        ));
    }
    store.append_log(LogLine::system(at(10), LogLevel::Debug, "sys-debug"));
    store.append_log(LogLine::system(at(11), LogLevel::Info, "sys-info"));
    store.append_log(LogLine::system(at(12), LogLevel::Warn, "sys-warn").with_instance(a.clone()));
    store.append_log(LogLine::system(at(13), LogLevel::Error, "sys-error"));
    store.flush().await.unwrap();

    let all = store.job_logs(a1.id, None).await.unwrap();
    assert_eq!(messages(&all), ["a1-0", "a1-1", "a1-2", "a1-3", "a1-4"]);
    let first = &all[0];
    assert_eq!(first.line.job_id, Some(a1.id));
    assert_eq!(first.job_iid, Some(1));
    assert_eq!(first.line.instance.as_ref(), Some(&a), "taken from the job");
    assert_eq!(first.line.target.as_deref(), Some("volume:x"));
    assert_eq!(first.line.ts, at(0));
    let tail = store.job_logs(a1.id, Some(2)).await.unwrap();
    assert_eq!(messages(&tail), ["a1-3", "a1-4"]);
    let after_first = store.job_logs_after(a1.id, first.id, 2).await.unwrap();
    assert_eq!(
        messages(&after_first),
        ["a1-1", "a1-2"],
        "the next page, in order"
    );
    let last = all.last().unwrap().id;
    assert!(
        store
            .job_logs_after(a1.id, last, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let instance_tail = store.instance_logs(&a, 3).await.unwrap();
    assert_eq!(messages(&instance_tail), ["a2-3", "a1-4", "a2-4"]);
    assert_eq!(instance_tail[0].job_iid, Some(2));
    assert_eq!(store.instance_logs(&b, 100).await.unwrap().len(), 5);

    let system = store.system_logs(100, None).await.unwrap();
    assert_eq!(
        messages(&system),
        ["sys-debug", "sys-info", "sys-warn", "sys-error"]
    );
    assert_eq!(system[2].line.instance.as_ref(), Some(&a));
    assert_eq!(system[2].job_iid, None);
    let warnings = store.system_logs(100, Some(LogLevel::Warn)).await.unwrap();
    assert_eq!(messages(&warnings), ["sys-warn", "sys-error"]);
    let last = store.system_logs(1, Some(LogLevel::Info)).await.unwrap();
    assert_eq!(messages(&last), ["sys-error"]);
}

#[tokio::test]
async fn pruning_deletes_only_old_lines_and_never_jobs() {
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    for i in 0..10 {
        store.append_log(LogLine::job(at(i), job.id, LogLevel::Info, format!("{i}")));
        store.append_log(LogLine::system(at(i), LogLevel::Info, format!("s{i}")));
    }
    store.flush().await.unwrap();
    assert_eq!(store.prune_logs(at(6)).await.unwrap(), 12);
    let left = store.job_logs(job.id, None).await.unwrap();
    assert_eq!(messages(&left), ["6", "7", "8", "9"]);
    assert_eq!(store.system_logs(100, None).await.unwrap().len(), 4);
    assert!(store.job(job.id).await.unwrap().is_some());
    assert_eq!(store.prune_logs(at(6)).await.unwrap(), 0);
}

#[tokio::test]
async fn a_line_of_an_unknown_job_is_kept_as_a_system_line() {
    let (store, _dir) = fresh().await;
    store.append_log(LogLine::job(at(0), JobId(404), LogLevel::Warn, "orphan"));
    store.flush().await.unwrap();
    let system = store.system_logs(10, None).await.unwrap();
    assert_eq!(
        messages(&system),
        ["(job 404 is not in the job store) orphan"]
    );
}

#[tokio::test]
async fn the_tracing_layer_routes_job_and_system_events() {
    let (store, _dir) = fresh().await;
    let nightly = instance("nightly");
    let job = store
        .create_job(&nightly, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let later = store
        .create_job(&nightly, "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(store.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // Explicit targets: events of `marina::store…` (this test module's own path) are
        // deliberately not stored.
        let job_span = tracing::info_span!("job", job_id = job.id.0, instance = "nightly");
        let entered = job_span.enter();
        tracing::info!(target: "marina::executor", "Backup started.");
        {
            let target_span = tracing::info_span!("target", target = "volume:app-data");
            let _target = target_span.enter();
            tracing::info!(target: "marina::executor", files = 3, path = "/a b", "Copied the volume.");
            tracing::debug!(target: "marina::executor", "Debug lines of jobs are kept.");
        }
        tracing::trace!(target: "marina::executor", "Trace lines are not.");
        tracing::info!(target: "marina::store::writer", "Ignored: the store's own event.");
        drop(entered);

        tracing::warn!(target: "marina::docker", error = "EOF", "The Docker event stream dropped.");
        tracing::info!(target: "marina::config", instance = "nightly", "Config reloaded.");
        tracing::debug!(target: "marina::docker", "System DEBUG lines are not stored.");

        // A job id recorded after the span was created.
        let late = tracing::info_span!("job", job_id = tracing::field::Empty);
        late.record("job_id", later.id.0);
        let _late = late.enter();
        tracing::error!(target: "marina::executor", "Backend failed.");
    });
    store.flush().await.unwrap();

    let lines = store.job_logs(job.id, None).await.unwrap();
    assert_eq!(
        messages(&lines),
        [
            "Backup started.",
            "Copied the volume. files=3 path=\"/a b\"",
            "Debug lines of jobs are kept."
        ]
    );
    assert_eq!(lines[0].line.target, None);
    assert_eq!(lines[1].line.target.as_deref(), Some("volume:app-data"));
    assert_eq!(lines[1].line.instance.as_ref(), Some(&nightly));
    assert_eq!(lines[1].line.level, LogLevel::Info);
    assert_eq!(lines[2].line.level, LogLevel::Debug);

    let system = store.system_logs(10, None).await.unwrap();
    assert_eq!(
        messages(&system),
        [
            "The Docker event stream dropped. error=EOF",
            "Config reloaded."
        ]
    );
    assert_eq!(system[0].line.level, LogLevel::Warn);
    assert_eq!(system[1].line.instance.as_ref(), Some(&nightly));

    let late = store.job_logs(later.id, None).await.unwrap();
    assert_eq!(messages(&late), ["Backend failed."]);
    assert_eq!(late[0].line.level, LogLevel::Error);
}

#[tokio::test]
async fn writes_after_the_writer_stopped_fail_clearly() {
    let (store, _dir) = fresh().await;
    let path: PathBuf = store.path().to_path_buf();
    // Simulate a dead writer by stopping it behind the handle's back.
    store.inner.commands.send(Command::Shutdown).unwrap();
    // Wait until the writer thread has exited and dropped its inbox.
    loop {
        let (probe, _) = tokio::sync::oneshot::channel();
        if store.inner.commands.send(Command::Flush(probe)).is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let error = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::WriterGone { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()));
    store.append_log(LogLine::system(at(0), LogLevel::Info, "lost"));
    assert_eq!(store.lost_log_lines(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_lines_waits_for_room_and_every_line_is_stored() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = QUEUE_CAPACITY;
    let (store, _dir) = fresh().await;
    let job = store
        .create_job(&instance("a"), "n", Trigger::Manual, at(0))
        .await
        .unwrap();
    // Hold the writer inside a write, as a slow disk would, so the queue fills up.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let stuck = store.clone();
    let blocked_write = tokio::spawn(async move {
        stuck
            .write("wait for the test".to_owned(), false, move |_| {
                let _ = held.recv();
                Ok(())
            })
            .await
    });
    let sent = Arc::new(AtomicU64::new(0));
    let floods: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, sent) = (store.clone(), Arc::clone(&sent));
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let line = LogLine::job(at(0), job.id, LogLevel::Info, format!("t{t} {i}"));
                    store.append_log(line);
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let total = u64::try_from(THREADS * PER_THREAD).unwrap();
    // The senders fill the queue to its bound and then wait; they never get further while
    // the writer is held.
    for _ in 0..400 {
        if store.queued() >= QUEUE_CAPACITY {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        store.queued(),
        QUEUE_CAPACITY,
        "the queue stops at its bound"
    );
    assert!(
        sent.load(Ordering::Relaxed) < total,
        "the senders wait for room instead of queueing without limit"
    );
    release.send(()).unwrap();
    for flood in floods {
        flood.join().unwrap();
    }
    blocked_write.await.unwrap().unwrap();
    store.flush().await.unwrap();
    assert_eq!(
        count(
            store.path(),
            &format!(
                "SELECT COUNT(DISTINCT message) FROM logs WHERE job_id = {}",
                job.id.0
            )
        ),
        i64::try_from(total).unwrap()
    );
    assert_eq!(store.lost_log_lines(), 0);
    assert!(store.queued() <= QUEUE_CAPACITY);
}

#[tokio::test]
async fn events_on_the_writer_thread_are_never_queued_for_it() {
    let (store, _dir) = fresh().await;
    let subscriber = tracing_subscriber::registry().with(LogLayer::new(store.clone()));
    let dispatch = tracing::Dispatch::new(subscriber);
    // An event from inside a write runs on the writer thread; with a full queue, storing it
    // would wait for room only the writer can make.
    store
        .write("log from the writer".to_owned(), false, move |_| {
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(target: "marina::elsewhere", "Said on the writer thread.");
            });
            Ok(())
        })
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(count(store.path(), "SELECT COUNT(*) FROM logs"), 0);
}

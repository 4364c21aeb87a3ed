//! Memory while a database dump of 2 gibibytes streams through Marina into restic
//! (`dump_peak_rss_mb`): a running container labelled as a postgres target whose
//! `pg_dumpall` is a stand-in writing 2 gibibytes, backed up by a fresh Marina whose peak resident
//! memory (`VmHWM`, over its whole life: start-up and the dump) is read after the job.

use std::time::Duration;

use crate::daemon::{Marina, restic, restic_instance};
use crate::support::{DB, ENABLED, INSTANCE, RUN_LABEL, SCENARIO_LABEL, Sweep, docker, prefix};
use crate::{Figure, Report, tools};

const SCENARIO: &str = "dump";

pub async fn run(report: &mut Report) {
    let (image, _image) = tools::build();
    let sweep = Sweep::scenario(SCENARIO);
    let dir = tempfile::tempdir().expect("a scenario directory");
    let container = crate::support::unique("pg");
    docker(&[
        "run",
        "--detach",
        "--name",
        &container,
        "--network",
        "none",
        "--label",
        &format!("{RUN_LABEL}={}", prefix()),
        "--label",
        &format!("{SCENARIO_LABEL}={SCENARIO}"),
        "--label",
        &format!("{ENABLED}=true"),
        "--label",
        &format!("{INSTANCE}=dump"),
        "--label",
        &format!("{DB}=postgres"),
        &image,
        "sleep",
        "3600",
    ]);
    let repo = dir.path().join("repo");
    restic(&repo, &["init"]);
    let config = format!(
        "instances:\n{}",
        restic_instance("dump", &repo, "0 3 1 1 *")
    );
    let marina = Marina::spawn(dir.path(), &config);
    marina.wait_ready(Duration::from_secs(30)).await;
    let before = marina.memory();
    let (id, duration) = marina.backup("dump", Duration::from_mins(10)).await;
    let memory = marina.memory();
    let log = marina.job_log(id).await;
    let expected = format!("dump of {} bytes", tools::DUMP_BYTES);
    assert!(
        log.iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.contains(&expected))),
        "the job log does not report a dump of {} bytes: {log:?}",
        tools::DUMP_BYTES
    );
    marina.stop();
    report.detail(format!(
        "dump: {} bytes in {:.1} s ({:.0} MB/s); RSS before {:.1} MiB, peak {:.1} MiB",
        tools::DUMP_BYTES,
        duration.as_secs_f64(),
        tools::DUMP_BYTES as f64 / duration.as_secs_f64() / 1e6,
        before.rss_mb,
        memory.hwm_mb
    ));
    report.figure(Figure::DumpPeakRssMb, memory.hwm_mb);
    sweep.now();
}

//! The pipeline to the real Docker engine works: a container runs from the locally built
//! busybox image, and labels set on a real volume are read by Marina's label model.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

mod support;

use std::collections::HashMap;

use marina::model::labels::{self, LabelIntent, LabelledObject};
use marina::model::{TargetKind, VolumePath};
use support::{
    BUSYBOX_IMAGE, ContainerGuard, VolumeGuard, docker, require_engine_and_images, unique_name,
};

#[test]
fn a_container_from_the_local_busybox_image_runs_and_its_output_is_read() {
    require_engine_and_images();
    let name = unique_name("hello");
    let _guard = ContainerGuard(name.clone());
    let output = docker(&[
        "run",
        "--name",
        &name,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "echo marina $(uname -s); exit 0",
    ]);
    assert_eq!(output.trim(), "marina Linux");
    let status = docker(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(status.trim(), "0");
}

#[test]
fn labels_on_a_real_volume_become_a_target_intent() {
    require_engine_and_images();
    let volume = unique_name("labelled");
    let _volume_guard = VolumeGuard(volume.clone());
    docker(&[
        "volume",
        "create",
        "--label",
        "dev.polarfox.marina.enabled=true",
        "--label",
        "dev.polarfox.marina.instanceID=nightly,offsite",
        "--label",
        "dev.polarfox.marina.paths=/uploads",
        &volume,
    ]);
    // Data written through a container lands in the volume, as a backup would find it.
    let writer = unique_name("writer");
    let _writer_guard = ContainerGuard(writer.clone());
    let mount = format!("{volume}:/data");
    docker(&[
        "run",
        "--name",
        &writer,
        "-v",
        &mount,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "mkdir /data/uploads && echo hi > /data/uploads/a.txt",
    ]);
    let reader = unique_name("reader");
    let _reader_guard = ContainerGuard(reader.clone());
    let read = docker(&[
        "run",
        "--name",
        &reader,
        "-v",
        &mount,
        BUSYBOX_IMAGE,
        "cat",
        "/data/uploads/a.txt",
    ]);
    assert_eq!(read, "hi\n");

    let json = docker(&["volume", "inspect", "--format", "{{json .Labels}}", &volume]);
    let labels: HashMap<String, String> = serde_json::from_str(json.trim()).unwrap();
    let LabelIntent::Target { spec, instances } =
        labels::parse(LabelledObject::Volume(&volume), &labels)
    else {
        panic!("expected a target from {labels:?}");
    };
    assert_eq!(spec.id.to_string(), format!("volume:{volume}"));
    let ids: Vec<&str> = instances
        .iter()
        .map(marina::model::InstanceId::as_str)
        .collect();
    assert_eq!(ids, ["nightly", "offsite"]);
    assert_eq!(
        spec.kind,
        TargetKind::Volume {
            paths: vec![VolumePath::parse("uploads").unwrap()],
            stop_attached: None,
        }
    );
}

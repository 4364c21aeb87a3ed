//! The two image recipes agree: `Dockerfile` (registry builds) and `Dockerfile.local`
//! (`make image-local`, which the deployment tests run) have the same runtime settings, and
//! `Dockerfile` copies everything a release build reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // In tests a panic is the failure report.

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The lines between `# runtime: begin` and `# runtime: end`.
fn runtime(dockerfile: &str) -> Vec<&str> {
    let start = dockerfile
        .find("# runtime: begin")
        .expect("a runtime section");
    let end = dockerfile.find("# runtime: end").expect("its end");
    dockerfile[start..end].lines().skip(1).collect()
}

#[test]
fn both_recipes_have_the_same_runtime() {
    let registry = read("Dockerfile");
    let local = read("Dockerfile.local");
    assert_eq!(runtime(&registry), runtime(&local));
    let settings = runtime(&registry).join("\n");
    for expected in [
        r#"ENTRYPOINT ["marina"]"#,
        r#"CMD ["run"]"#,
        r#"CMD ["marina", "healthcheck"]"#,
        "HEALTHCHECK",
    ] {
        assert!(settings.contains(expected), "missing `{expected}`");
    }
}

#[test]
fn the_registry_recipe_copies_what_the_build_reads() {
    let registry = read("Dockerfile");
    for package in ["restic", "ca-certificates", "openssh-client", "tzdata"] {
        assert!(registry.contains(package), "the runtime installs {package}");
    }
    let copied: Vec<&str> = registry
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let parts: Vec<&str> = l.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .collect();
    // What `cargo build --release` needs: the manifest, the lock file, the sources and the
    // dashboard assets embedded into the binary.
    for needed in ["Cargo.toml", "Cargo.lock", "src", "assets"] {
        assert!(
            copied.contains(&needed),
            "Dockerfile copies {needed}: {copied:?}"
        );
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(needed).exists(),
            "{needed} exists"
        );
    }
    let manifest = read("Cargo.toml");
    assert!(
        !manifest.contains("build =") && !Path::new("build.rs").exists(),
        "a build script would need copying too"
    );
}

//! Generated valid configs, written in two YAML styles, decode to the same `Config`, which
//! says what the model says.

use super::*;

/// A valid config, described plainly.
#[derive(Debug, Clone)]
struct ModelConfig {
    instances: Vec<ModelInstance>,
    max_concurrent_jobs: Option<usize>,
    api_port: Option<u16>,
}

#[derive(Debug, Clone)]
struct ModelInstance {
    id: String,
    /// `Some(path under /srv)` for restic, `None` for a custom image.
    repository: Option<String>,
    schedule: &'static str,
    retention: Option<(u32, u32, u32)>,
    timezone: Option<&'static str>,
    targets: Vec<ModelTarget>,
}

#[derive(Debug, Clone)]
struct ModelTarget {
    volume: bool,
    name: String,
    paths: Vec<String>,
}

fn model_config() -> impl Strategy<Value = ModelConfig> {
    let target = (
        any::<bool>(),
        "[a-z][a-z0-9_.-]{0,8}",
        proptest::collection::vec("[a-z]{1,5}(/[a-z]{1,5})?", 0..3),
    )
        .prop_map(|(volume, name, paths)| ModelTarget {
            volume,
            name,
            paths: if volume { paths } else { Vec::new() },
        });
    let instance = (
        "[a-zA-Z0-9][a-zA-Z0-9._-]{0,8}",
        prop::option::of("[a-z]{1,6}(/[a-z]{1,6})?"),
        prop::sample::select(vec![
            "@daily",
            "@hourly",
            "0 2 * * *",
            "*/15 * * * *",
            "30 0 3 * * MON-FRI",
        ]),
        prop::option::of((1u32..30, 0u32..10, 0u32..12)),
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "Europe/Berlin",
            "America/New_York",
        ])),
        proptest::collection::vec(target, 0..4),
    )
        .prop_map(
            |(id, repository, schedule, retention, timezone, targets)| ModelInstance {
                id,
                // A custom image owns its retention; setting one would only draw a warning.
                retention: retention.filter(|_| repository.is_some()),
                repository,
                schedule,
                timezone,
                targets,
            },
        );
    (
        proptest::collection::vec(instance, 1..4),
        prop::option::of(1usize..8),
        prop::option::of(1u16..65535),
    )
        .prop_map(|(mut instances, max_concurrent_jobs, api_port)| {
            // Ids and target names must be unique; a suffix makes them so.
            for (i, instance) in instances.iter_mut().enumerate() {
                instance.id = format!("{}-{i}", instance.id);
                for (j, target) in instance.targets.iter_mut().enumerate() {
                    target.name = format!("{}{j}", target.name);
                }
            }
            ModelConfig {
                instances,
                max_concurrent_jobs,
                api_port,
            }
        })
}

/// Where a value was written, for checking a diagnostic's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    line: usize,
    column: usize,
}

/// Block style: one key per line, in schema order, schedules single-quoted. Returns the text
/// and where each instance's backend value (repository or image) starts.
fn render_block(
    model: &ModelConfig,
    backend_value: &dyn Fn(usize, &ModelInstance) -> String,
) -> (String, Vec<Written>) {
    let mut lines: Vec<String> = Vec::new();
    let mut backends = Vec::new();
    if let Some(n) = model.max_concurrent_jobs {
        lines.push(format!("maxConcurrentJobs: {n}"));
    }
    if let Some(port) = model.api_port {
        lines.push(format!("apiPort: {port}"));
    }
    lines.push("instances:".into());
    for (i, instance) in model.instances.iter().enumerate() {
        lines.push(format!("  - id: {}", instance.id));
        let key = if instance.repository.is_some() {
            "repository"
        } else {
            "customImage"
        };
        backends.push(Written {
            line: lines.len() + 1,
            column: 4 + key.len() + 3,
        });
        lines.push(format!("    {key}: {}", backend_value(i, instance)));
        lines.push(format!("    schedule: '{}'", instance.schedule));
        if let Some((d, w, m)) = instance.retention {
            lines.push(format!("    retention: {d}d:{w}w:{m}m"));
        }
        if let Some(tz) = instance.timezone {
            lines.push(format!("    timezone: {tz}"));
        }
        if instance.repository.is_some() {
            lines.push("    env:".into());
            lines.push("      RESTIC_PASSWORD: pw".into());
        }
        if !instance.targets.is_empty() {
            lines.push("    targets:".into());
        }
        for target in &instance.targets {
            let kind = if target.volume { "volume" } else { "db" };
            lines.push(format!("      - {kind}: {}", target.name));
            if !target.paths.is_empty() {
                lines.push("        paths:".into());
                for path in &target.paths {
                    lines.push(format!("          - {path}"));
                }
            }
        }
    }
    (lines.join("\n") + "\n", backends)
}

/// Flow style: each instance one line, keys in reverse order, every value double-quoted,
/// repositories through `${REPO_ROOT}`, and the restic `env` written once behind an anchor.
fn render_flow(model: &ModelConfig) -> String {
    let mut out = String::from("{\n");
    let mut anchored = false;
    out.push_str("\"instances\": [\n");
    for instance in &model.instances {
        let mut fields: Vec<String> = Vec::new();
        fields.push(format!("\"id\": \"{}\"", instance.id));
        match &instance.repository {
            Some(path) => fields.push(format!("repository: \"${{REPO_ROOT}}/{path}\"")),
            None => fields.push("customImage: \"backup/image:1\"".into()),
        }
        fields.push(format!("schedule: \"{}\"", instance.schedule));
        if let Some((d, w, m)) = instance.retention {
            fields.push(format!("retention: \"{d}:{w}:{m}\""));
        }
        if let Some(tz) = instance.timezone {
            fields.push(format!("timezone: \"{tz}\""));
        }
        if instance.repository.is_some() {
            if anchored {
                fields.push("env: *restic_env".into());
            } else {
                fields.push("env: &restic_env {\"RESTIC_PASSWORD\": \"pw\"}".into());
                anchored = true;
            }
        }
        let targets: Vec<String> = instance
            .targets
            .iter()
            .map(|t| {
                let kind = if t.volume { "volume" } else { "db" };
                let paths: Vec<String> = t.paths.iter().map(|p| format!("\"{p}/\"")).collect();
                if paths.is_empty() {
                    format!("{{{kind}: \"{}\"}}", t.name)
                } else {
                    format!("{{paths: [{}], {kind}: \"{}\"}}", paths.join(", "), t.name)
                }
            })
            .collect();
        fields.push(format!("targets: [{}]", targets.join(", ")));
        fields.reverse();
        let _ = writeln!(out, "  {{{}}},", fields.join(", "));
    }
    out.push_str("],\n");
    if let Some(n) = model.max_concurrent_jobs {
        let _ = writeln!(out, "\"maxConcurrentJobs\": \"{n}\",");
    }
    if let Some(port) = model.api_port {
        let _ = writeln!(out, "apiPort: \"{port}\",");
    }
    out.push_str("}\n");
    out
}

fn plain_backend(_: usize, instance: &ModelInstance) -> String {
    match &instance.repository {
        Some(path) => format!("/srv/{path}"),
        None => "backup/image:1".into(),
    }
}

/// The config a model describes, checked field by field against what was decoded.
fn check_against_model(model: &ModelConfig, config: &Config) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        config.max_concurrent_jobs.get(),
        model.max_concurrent_jobs.unwrap_or(2)
    );
    prop_assert_eq!(config.api.port, model.api_port.unwrap_or(DEFAULT_API_PORT));
    prop_assert_eq!(&config.node_name, "prop-host");
    prop_assert_eq!(config.instances.len(), model.instances.len());
    for (instance, expected) in config.instances.iter().zip(&model.instances) {
        prop_assert_eq!(instance.id.as_str(), expected.id.as_str());
        prop_assert_eq!(instance.schedule.as_str(), expected.schedule);
        prop_assert_eq!(instance.timezone.name(), expected.timezone.unwrap_or("UTC"));
        match (&instance.backend, &expected.repository) {
            (
                Backend::Restic {
                    repository,
                    retention,
                    ..
                },
                Some(path),
            ) => {
                prop_assert_eq!(repository.expose(), format!("/srv/{path}"));
                let (d, w, m) = expected.retention.unwrap_or((7, 4, 6));
                prop_assert_eq!(
                    (
                        retention.keep_daily,
                        retention.keep_weekly,
                        retention.keep_monthly,
                        retention.keep_yearly
                    ),
                    (d, w, m, 0)
                );
                prop_assert_eq!(
                    instance.env.get("RESTIC_PASSWORD").map(Secret::expose),
                    Some("pw")
                );
            }
            (Backend::CustomImage { image, .. }, None) => prop_assert_eq!(image, "backup/image:1"),
            (backend, repository) => prop_assert!(
                false,
                "backend {} for repository {:?}",
                backend.kind(),
                repository
            ),
        }
        prop_assert_eq!(instance.targets.len(), expected.targets.len());
        for (target, want) in instance.targets.iter().zip(&expected.targets) {
            let name =
                DockerName::parse(&want.name).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if want.volume {
                prop_assert_eq!(&target.id, &TargetId::Volume(name));
                let paths: Vec<VolumePath> = if want.paths.is_empty() {
                    vec![VolumePath::root()]
                } else {
                    want.paths
                        .iter()
                        .filter_map(|p| VolumePath::parse(p).ok())
                        .collect()
                };
                prop_assert_eq!(
                    &target.kind,
                    &TargetKind::Volume {
                        paths,
                        stop_attached: None
                    }
                );
            } else {
                prop_assert_eq!(&target.id, &TargetId::Db(name));
            }
        }
    }
    Ok(())
}

fn load_valid(text: &str) -> Result<Config, TestCaseError> {
    match load_str(text, "props.yml", &FakeEnv) {
        Ok(loaded) => {
            prop_assert!(
                loaded.warnings.is_empty(),
                "warnings for\n{}\n{:?}",
                text,
                loaded.warnings
            );
            Ok(loaded.config)
        }
        Err(error) => Err(TestCaseError::fail(format!("rejected:\n{text}\n{error}"))),
    }
}

proptest! {
    /// No renderer turns a `Config` back into YAML, so the round trip starts from a model:
    /// written in two unlike styles, it decodes to one and the same `Config`, which says what
    /// the model says.
    #[test]
    fn a_valid_config_decodes_the_same_in_any_style(model in model_config()) {
        let (block, _) = render_block(&model, &plain_backend);
        let flow = render_flow(&model);
        let from_block = load_valid(&block)?;
        let from_flow = load_valid(&flow)?;
        prop_assert_eq!(&from_block, &from_flow);
        check_against_model(&model, &from_block)?;
    }

    /// An unset variable in a value is an error that names the variable, at the value's
    /// line and column, under the field's path.
    #[test]
    fn an_unset_variable_is_reported_where_it_is_written(model in model_config(), pick in any::<prop::sample::Index>(), name in prop::sample::select(&UNSET[..])) {
        let which = pick.index(model.instances.len());
        let with_reference = |i: usize, instance: &ModelInstance| {
            if i == which { format!("${{{name}}}/x") } else { plain_backend(i, instance) }
        };
        let (text, backends) = render_block(&model, &with_reference);
        let result = load_str(&text, "props.yml", &FakeEnv);
        check_diagnostics(&text, &result)?;
        let Err(error) = result else {
            return Err(TestCaseError::fail(format!("accepted with an unset variable:\n{text}")));
        };
        let field = if model.instances[which].repository.is_some() { "repository" } else { "customImage" };
        let errors: Vec<&Diagnostic> = error.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        prop_assert_eq!(errors.len(), 1, "{}", error);
        let diagnostic = errors[0];
        prop_assert!(diagnostic.message.contains(&format!("`{name}` is not set")), "{}", diagnostic);
        prop_assert_eq!(&diagnostic.path, &format!("instances[{which}].{field}"));
        prop_assert_eq!(
            diagnostic.position.map(|p| Written { line: p.line, column: p.column }),
            Some(backends[which])
        );
    }
}

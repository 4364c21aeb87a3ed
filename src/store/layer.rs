//! A `tracing` layer that stores events as log lines, so that code running a job logs with
//! ordinary `tracing` macros and the lines land in that job's log.
//!
//! An event inside a span carrying `job_id` becomes a line of that job, with the `instance`
//! and `target` found on its spans (the innermost wins) or on the event itself. Other
//! events at INFO or above become system lines. The stored message is the event's message
//! followed by its other fields as `key=value`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use super::Store;
use super::types::{JobId, LogLevel, LogLine};
use crate::model::InstanceId;

/// Events of the store itself are never stored: storing them would log about logging, and a
/// failing disk would feed itself.
const STORE_TARGET: &str = "marina::store";

/// Stores `tracing` events in the job store.
///
/// An event inside a span carrying `job_id` becomes a line of that job, with the `instance`
/// and `target` of its spans (the innermost wins) or of the event itself; other events at
/// INFO or above become system lines. The message is the event's message followed by its
/// other fields as `key=value`. TRACE events are never stored.
///
/// Add it beside the console layer:
/// `tracing_subscriber::registry().with(fmt_layer).with(LogLayer::new(store.clone()))`.
/// It sees only events the subscriber's filters let through: with a global `info` filter,
/// DEBUG lines of jobs are not stored; give the console layer its own filter
/// (`fmt::layer().with_filter(env_filter)`) to store them. Events of targets starting with
/// `marina::store`, and any event on the store's writer thread, are ignored.
///
/// Logging waits (back-pressure) while the store's queue is full, so no line is lost and
/// memory stays bounded even when a backend outpaces the disk.
#[derive(Debug, Clone)]
pub struct LogLayer {
    /// Where lines go; `append_log` waits only while the store's queue is full.
    store: Store,
}

impl LogLayer {
    /// A layer writing into `store`.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

/// The routing fields a span (or an event) carries.
#[derive(Debug, Clone, Default)]
struct Scope {
    job_id: Option<JobId>,
    instance: Option<String>,
    target: Option<String>,
}

impl Scope {
    /// Takes `inner`'s fields over ours: the innermost span, then the event, wins.
    fn overlay(&mut self, inner: &Self) {
        if inner.job_id.is_some() {
            self.job_id = inner.job_id;
        }
        if inner.instance.is_some() {
            self.instance.clone_from(&inner.instance);
        }
        if inner.target.is_some() {
            self.target.clone_from(&inner.target);
        }
    }

    /// Claims a routing field; returns whether `name` was one.
    fn claim(&mut self, name: &str, value: String) -> bool {
        match name {
            "job_id" => match value.trim().parse() {
                Ok(id) => self.job_id = Some(JobId(id)),
                // Not a number: not ours to route by; show it instead of guessing.
                Err(_) => return false,
            },
            "instance" => self.instance = Some(value),
            "target" => self.target = Some(value),
            _ => return false,
        }
        true
    }
}

impl Visit for Scope {
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "job_id" {
            self.job_id = Some(JobId(value));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "job_id" {
            self.job_id = i64::try_from(value).ok().map(JobId);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.claim(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if matches!(field.name(), "job_id" | "instance" | "target") {
            self.claim(field.name(), format!("{value:?}"));
        }
    }
}

/// An event's message, routing fields, and the rest as `key=value`.
#[derive(Debug, Default)]
struct EventFields {
    message: String,
    scope: Scope,
    extra: String,
}

impl EventFields {
    fn push(&mut self, name: &str, value: String) {
        if name == "message" {
            self.message = value;
        } else if name.starts_with("log.") {
            // Metadata that tracing-log attaches to `log` records; the target says enough.
        } else if !self.scope.claim(name, value.clone()) {
            let _ = write!(self.extra, " {name}={value}");
        }
    }
}

impl Visit for EventFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field.name(), value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field.name(), value.to_string());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // Quote values that would not read back as one `key=value` word.
        let routing = matches!(field.name(), "message" | "job_id" | "instance" | "target");
        let text = if !routing
            && (value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '"'))
        {
            format!("{value:?}")
        } else {
            value.to_owned()
        };
        self.push(field.name(), text);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(field.name(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field.name(), format!("{value:?}"));
    }
}

fn level_of(level: Level) -> Option<LogLevel> {
    if level == Level::ERROR {
        Some(LogLevel::Error)
    } else if level == Level::WARN {
        Some(LogLevel::Warn)
    } else if level == Level::INFO {
        Some(LogLevel::Info)
    } else if level == Level::DEBUG {
        Some(LogLevel::Debug)
    } else {
        // TRACE is too chatty to keep; it stays on the console when enabled.
        None
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut scope = Scope::default();
        attrs.record(&mut scope);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(scope);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(scope) = extensions.get_mut::<Scope>() {
                values.record(scope);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        // The writer thread's own events stay on the console: it must never wait on its own
        // queue.
        if metadata.target().starts_with(STORE_TARGET) || super::writer::on_writer_thread() {
            return;
        }
        let Some(level) = level_of(*metadata.level()) else {
            return;
        };
        let mut scope = Scope::default();
        if let Some(spans) = ctx.event_scope(event) {
            for span in spans.from_root() {
                if let Some(fields) = span.extensions().get::<Scope>() {
                    scope.overlay(fields);
                }
            }
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        scope.overlay(&fields.scope);
        if scope.job_id.is_none() && !level.is_at_least(LogLevel::Info) {
            return;
        }
        let mut message = fields.message;
        message.push_str(&fields.extra);
        let instance = scope.instance.and_then(|raw| {
            let parsed = InstanceId::parse(&raw).ok();
            if parsed.is_none() {
                // Keep what the code said even when it is not a valid instance id.
                let _ = write!(message, " instance={raw}");
            }
            parsed
        });
        self.store.append_log(LogLine {
            ts: crate::clock::now(),
            level,
            message: message.trim_start().to_owned(),
            instance,
            target: scope.target,
            job_id: scope.job_id,
        });
    }
}

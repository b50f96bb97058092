//! Progress bars for long deployer operations (`indicatif`), hidden when stderr is not a
//! terminal so logs and CI output stay clean.

use std::cell::RefCell;
use std::time::Instant;

use aex_deploy::ops::deploy::{DeployObserver, Plan};
use aex_deploy::progress::{Observer, StateLoss};
use indicatif::{ProgressBar, ProgressStyle};

use crate::shell::Shell;

/// An [`Observer`] drawing one bar per phase.
pub struct Bars<'a> {
    shell: &'a Shell,
    bar: RefCell<Option<(ProgressBar, String, Instant)>>,
    /// Whether a lost state is given up without asking (`--yes`).
    yes: bool,
}

impl<'a> Bars<'a> {
    /// Bars on `shell`'s stderr.
    pub fn new(shell: &'a Shell) -> Self {
        Bars {
            shell,
            bar: RefCell::new(None),
            yes: false,
        }
    }

    /// Bars that answer yes when asked to give up a lost state (`--yes`).
    pub fn yes(mut self, yes: bool) -> Self {
        self.yes = yes;
        self
    }
}

impl Observer for Bars<'_> {
    fn phase(&self, name: &str, total: u64) {
        let bar = if self.shell.interactive() {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{prefix:>12.cyan.bold} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_prefix(capitalize(name));
            b
        } else {
            ProgressBar::hidden()
        };
        *self.bar.borrow_mut() = Some((bar, name.to_string(), Instant::now()));
    }

    fn advance(&self, detail: &str) {
        if let Some((b, _, _)) = self.bar.borrow().as_ref() {
            b.set_message(detail.to_string());
            b.inc(1);
        }
    }

    fn finish(&self) {
        if let Some((b, name, started)) = self.bar.borrow_mut().take() {
            let n = b.position();
            b.finish_and_clear();
            if n > 0 {
                self.shell.status(
                    &capitalize(&past(&name)),
                    format!("{n} in {:.2} s", started.elapsed().as_secs_f64()),
                );
            }
        }
    }

    fn note(&self, message: &str) {
        self.shell.note(message);
    }

    fn start_afresh(&self, loss: &StateLoss) -> bool {
        if let Some((b, _, _)) = self.bar.borrow().as_ref() {
            b.finish_and_clear();
        }
        let (first, rest) = loss.why.split_once('\n').unwrap_or((&loss.why, ""));
        self.shell.warn(format!(
            "the state of module `{}` is lost: its recorded instance on node `{}` cannot hand it over ({first})",
            loss.module, loss.node
        ));
        if !rest.is_empty() {
            self.shell.note(rest);
        }
        let afresh = self.yes
            || self
                .shell
                .ask(&format!("Start `{}` from its default state?", loss.module));
        if afresh {
            self.shell.status(
                "Discarding",
                format!(
                    "the state of `{}`: it starts from its default state",
                    loss.module
                ),
            );
        }
        afresh
    }
}

impl DeployObserver for Bars<'_> {
    fn planned(&self, plan: &Plan) {
        crate::report::plan(plan, self.shell);
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn past(phase: &str) -> String {
    match phase {
        "build" => "built".into(),
        "load and attest" => "attested".into(),
        "connect" => "connected".into(),
        "start local nodes" => "started".into(),
        "stop local nodes" => "stopped".into(),
        other => other.into(),
    }
}

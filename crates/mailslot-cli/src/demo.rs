//! `mailslot demo`: a self-contained show of shared mailslots on this host, needing no
//! privileges: several processes on one name, the same order everywhere, one killed with
//! SIGKILL and gone from `status`, and `one` delivery.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use mailslot::{MailslotName, Scope, Writer};

use crate::Outcome;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Messages each of the two writers sends in the ordering act.
    #[arg(long, default_value_t = 4)]
    pub messages: usize,
}

const WAIT: Duration = Duration::from_secs(10);

/// One `mailslot listen --json` child and the texts it printed.
struct Instance {
    label: char,
    child: Child,
    lines: Receiver<String>,
    got: Vec<String>,
}

impl Instance {
    fn spawn(label: char, dir: &Path, name: &str, deliver: &str) -> anyhow::Result<Instance> {
        let exe = std::env::current_exe().context("cannot find the mailslot binary")?;
        let mut child = Command::new(exe)
            .args(["listen", name, "--shared", "--deliver", deliver, "--json"])
            .env("MAILSLOT_DIR", dir)
            .env("MAILSLOT_NO_NETWORK", "1")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .context("cannot start a listener")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let text = serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["text"].as_str().map(str::to_owned))
                    .unwrap_or(line);
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
        Ok(Instance {
            label,
            child,
            lines,
            got: Vec::new(),
        })
    }

    /// Collects until it has `count` messages in all (or the wait runs out).
    fn collect(&mut self, count: usize) {
        let deadline = Instant::now() + WAIT;
        while self.got.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(text) => self.got.push(text),
                Err(_) => break,
            }
        }
    }

    /// Collects whatever arrives within a short quiet period.
    fn drain(&mut self, quiet: Duration) {
        while let Ok(text) = self.lines.recv_timeout(quiet) {
            self.got.push(text);
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_instances(dir: &Path, name: &str, count: usize) -> anyhow::Result<()> {
    let name = MailslotName::parse(name)?;
    let deadline = Instant::now() + WAIT;
    loop {
        let live = mailslot::status_of(dir, &name)?.map_or(0, |s| s.instances.len());
        if live == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("mailslot \"{name}\": expected {count} instances, found {live}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn say(line: &str) {
    println!("{line}");
}

fn show_status(dir: &Path, name: &str) -> anyhow::Result<()> {
    let name = MailslotName::parse(name)?;
    match mailslot::status_of(dir, &name)? {
        None => say("     (no instances: the name is gone)"),
        Some(status) => {
            say("     instance          pid      delivered  lost  backlog");
            for i in &status.instances {
                say(&format!(
                    "     {:016x}  {:<8} {:>9}  {:>4}  {:>7}",
                    i.id, i.pid, i.delivered, i.lost, i.backlog
                ));
            }
        }
    }
    Ok(())
}

/// A private runtime directory for the demo, removed on drop.
struct DemoDir(PathBuf);

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = DemoDir(base.join(format!("mailslot-demo-{}", std::process::id())));
    let scope = Scope::Dir(dir.0.clone());
    let dir_path = scope.dir()?;

    say("mailslot demo: several processes share one mailslot name on this host");
    say(&format!(
        "runtime directory: {} (removed at the end)\n",
        dir_path.display()
    ));

    let news = "demo\\news";
    say(&format!(
        "1. Three processes open \"{news}\" shared (Windows would refuse the second)."
    ));
    let mut instances = Vec::new();
    for label in ['A', 'B', 'C'] {
        let instance = Instance::spawn(label, &dir_path, news, "all")?;
        say(&format!("   instance {label}: pid {}", instance.child.id()));
        instances.push(instance);
    }
    wait_for_instances(&dir_path, news, 3)?;

    let per_writer = args.messages.max(1);
    say(&format!(
        "\n2. Two writers send {per_writer} messages each, at the same time."
    ));
    let writers: Vec<_> = ["red", "blue"]
        .into_iter()
        .map(|colour| {
            let scope = scope.clone();
            std::thread::spawn(move || -> Result<(), mailslot::Error> {
                let mut writer = Writer::open_in(&scope, news)?;
                for i in 1..=per_writer {
                    writer.write(format!("{colour}-{i}").as_bytes())?;
                }
                Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer
            .join()
            .map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
    }
    let total = 2 * per_writer;
    for instance in &mut instances {
        instance.collect(total);
        say(&format!(
            "   {} got: {}",
            instance.label,
            instance.got.join(" ")
        ));
    }
    let same = instances.windows(2).all(|w| w[0].got == w[1].got);
    let complete = instances.iter().all(|i| i.got.len() == total);
    say(&format!(
        "   {} every instance got all {total}, in the same order",
        if same && complete { "OK:" } else { "FAILED:" }
    ));
    if !(same && complete) {
        bail!("the instances disagree");
    }

    say(&format!("\n3. `mailslot status {news}`:"));
    show_status(&dir_path, news)?;

    let victim = instances.remove(1);
    say(&format!(
        "\n4. kill -9 instance {} (pid {}): no goodbye, no cleanup code runs.",
        victim.label,
        victim.child.id()
    ));
    drop(victim); // SIGKILL and reap
    wait_for_instances(&dir_path, news, 2)?;
    say("   status now (the dead instance is gone, found by its kernel-released lock):");
    show_status(&dir_path, news)?;
    let mut writer = Writer::open_in(&scope, news)?;
    writer.write(b"after-the-kill")?;
    for instance in &mut instances {
        instance.collect(total + 1);
        say(&format!(
            "   {} still receives: {}",
            instance.label,
            instance.got.last().map_or("(nothing)", String::as_str)
        ));
    }
    drop(writer);

    let jobs = "demo\\jobs";
    say(&format!(
        "\n5. `one` delivery: three processes open \"{jobs}\"; each job goes to exactly one."
    ));
    let mut workers = Vec::new();
    for label in ['X', 'Y', 'Z'] {
        workers.push(Instance::spawn(label, &dir_path, jobs, "one")?);
    }
    wait_for_instances(&dir_path, jobs, 3)?;
    let mut writer = Writer::open_in(&scope, jobs)?;
    let job_count = 9;
    for i in 1..=job_count {
        writer.write(format!("job-{i}").as_bytes())?;
    }
    let mut union = Vec::new();
    let deadline = Instant::now() + WAIT;
    while union.len() < job_count && Instant::now() < deadline {
        for worker in &mut workers {
            worker.drain(Duration::from_millis(50));
        }
        union = workers.iter().flat_map(|w| w.got.clone()).collect();
    }
    for worker in &workers {
        say(&format!(
            "   {} got: {}",
            worker.label,
            if worker.got.is_empty() {
                "(nothing this time)".to_owned()
            } else {
                worker.got.join(" ")
            }
        ));
    }
    union.sort();
    union.dedup();
    let exact =
        union.len() == job_count && workers.iter().map(|w| w.got.len()).sum::<usize>() == job_count;
    say(&format!(
        "   {} {} of {job_count} jobs delivered, none twice",
        if exact { "OK:" } else { "FAILED:" },
        union.len()
    ));
    drop(writer);
    drop(workers);
    drop(instances);
    say("\n6. All listeners stopped: the names are gone.");
    let left = mailslot::list(&dir_path)?;
    say(&format!("   mailslots left: {}", left.len()));
    if !exact || !left.is_empty() {
        bail!("the demo found a problem");
    }
    say("\nDone. Try it yourself: `mailslot listen NAME --shared` in two terminals, then `mailslot send NAME hello`.");
    Ok(Outcome::Success)
}

//! `footprint`: what a name costs while it is open: the write cost with many idle instances
//! against one, and the memory of a name against its bound.
//!
//! Write cost: one writer process writes `--footprint-messages` 64-byte messages to a shared
//! name (default capacity and maximum message, drop-oldest) in a private runtime directory,
//! once with 1 instance open and once with `--footprint-instances` (128, every slot) open. All
//! instances are held by one helper process and are idle: opened, never read, never waiting,
//! so no write wakes anyone in either case and the difference is what the write path pays per
//! open instance (the ring drops the oldest, so writes never block). The writer first laps
//! the ring once, untimed, so every page is resident; then it times the messages (monotonic
//! clock around the loop, and its own user+sys CPU from getrusage). Each of
//! `--footprint-rounds` rounds runs both counts (alternating which goes first), fresh
//! processes and a fresh name each time; the median over the rounds is reported.
//!
//! Memory: for each capacity C of `--footprint-capacities` and maximum message M of
//! `--footprint-max-messages`, a reader process opens the name with those, and the
//! orchestrator writes M-byte messages in batches of at most C bytes of records, the reader
//! draining each batch, until twice the name's file has gone through the ring (so every page
//! of it was written and read, as in a long-lived name). Then: the file's allocation on tmpfs
//! (`st_blocks` x 512 of the name's file) and the resident bytes of the reader's mapping of it
//! (the `Rss:` lines of that file's mappings in the reader's `/proc/self/smaps`), each against
//! the bound C + M + 64 KiB.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mailslot::{ErrorKind, MailslotName, Scope, Server, Timeout, Writer};

use crate::args::{child_args, Args};
use crate::proc::{self, BenchResult, Child, TempDir};
use crate::report::{Record, Table};
use crate::sys::{self, Usage};

const NAME: &str = "bench-footprint";
/// The message size of the write-cost measurement.
const SIZE: usize = 64;
/// The slack the memory bound allows on top of the capacity and the largest message.
const SLACK: u64 = 64 << 10;

#[derive(Debug, Clone)]
pub struct Options {
    pub messages: usize,
    pub rounds: usize,
    pub instances: usize,
    pub capacities: Vec<usize>,
    pub max_messages: Vec<usize>,
}

impl Options {
    pub const KEYS: &'static [&'static str] = &[
        "footprint-messages",
        "footprint-rounds",
        "footprint-instances",
        "footprint-capacities",
        "footprint-max-messages",
        "out",
    ];

    pub fn from_args(args: &Args) -> BenchResult<Options> {
        let options = Options {
            messages: args.get("footprint-messages", 200_000)?,
            rounds: args.get("footprint-rounds", 3)?,
            instances: args.get("footprint-instances", 128)?,
            capacities: args.list("footprint-capacities", &[64 << 10, 1 << 20])?,
            max_messages: args.list("footprint-max-messages", &[64, 64 << 10])?,
        };
        if options.messages == 0 || options.rounds == 0 {
            return Err("--footprint-messages and --footprint-rounds must be at least 1".into());
        }
        if !(2..=128).contains(&options.instances) {
            return Err("--footprint-instances must be 2..=128 (a name has 128 slots)".into());
        }
        if options.capacities.iter().any(|&c| c == 0 || c > 1 << 30) {
            return Err("--footprint-capacities must be 1..=1073741824".into());
        }
        if options
            .max_messages
            .iter()
            .any(|&m| m == 0 || m > mailslot::MAX_MESSAGE_SIZE)
        {
            return Err("--footprint-max-messages must be 1..=1048576".into());
        }
        Ok(options)
    }
}

/// Bytes a message of `len` bytes takes in the ring.
fn record(len: usize) -> usize {
    crate::peers::mailslot::record(len)
}

/// The name's file in a runtime directory, as the library names it.
fn name_file(dir: &Path) -> BenchResult<PathBuf> {
    let name = MailslotName::parse(NAME).map_err(|e| format!("footprint: {e}"))?;
    Ok(dir.join(name.file_name()))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One timed writer: ns per write, wall and CPU.
fn write_round(instances: usize, options: &Options) -> BenchResult<(f64, f64)> {
    let dir = TempDir::new("footprint")?;
    let dir_arg = dir.path().display().to_string();
    let mut holder = Child::spawn(
        &format!("footprint holder of {instances} instances"),
        &child_args(
            "footprint-instances",
            &[("dir", dir_arg.clone()), ("count", instances.to_string())],
        ),
    )?;
    holder.expect("ready")?;
    let mut writer = Child::spawn(
        "footprint writer",
        &child_args(
            "footprint-writer",
            &[("dir", dir_arg), ("messages", options.messages.to_string())],
        ),
    )?;
    writer.expect("ready")?;
    writer.send("go")?;
    let done = writer.expect("done")?;
    writer.finish()?;
    // The instances must still be open (a write to a closed name fails, but say it here too).
    holder.send("check")?;
    let open = holder.expect("open")?.u64("count")?;
    if open != instances as u64 {
        return Err(format!(
            "footprint: {open} of {instances} instances open after the writes"
        ));
    }
    holder.finish()?;
    let n = options.messages as f64;
    Ok((done.f64("wall")? / n, done.f64("cpu")? / n))
}

struct WriteCost {
    instances: usize,
    wall: f64,
    cpu: f64,
}

fn write_cost(options: &Options) -> BenchResult<Vec<WriteCost>> {
    let counts = [1, options.instances];
    let mut samples = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for round in 0..options.rounds {
        // Alternate the order, so a drift of the machine's load favours neither.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            eprintln!(
                "footprint: write cost, {} instance(s), round {} of {} ...",
                counts[i],
                round + 1,
                options.rounds
            );
            let (wall, cpu) = write_round(counts[i], options)?;
            samples[i].0.push(wall);
            samples[i].1.push(cpu);
        }
    }
    Ok(counts
        .iter()
        .zip(samples.iter_mut())
        .map(|(&instances, (wall, cpu))| WriteCost {
            instances,
            wall: median(wall),
            cpu: median(cpu),
        })
        .collect())
}

struct Memory {
    capacity: usize,
    max_message: usize,
    file_bytes: u64,
    tmpfs_bytes: u64,
    rss_bytes: u64,
    written: u64,
    read: u64,
    lost: u64,
}

impl Memory {
    fn bound(&self) -> u64 {
        self.capacity as u64 + self.max_message as u64 + SLACK
    }
}

fn memory(capacity: usize, max_message: usize) -> BenchResult<Memory> {
    let dir = TempDir::new("footprint-mem")?;
    let file = name_file(dir.path())?;
    let mut reader = Child::spawn(
        "footprint reader",
        &child_args(
            "footprint-reader",
            &[
                ("dir", dir.path().display().to_string()),
                ("capacity", capacity.to_string()),
                ("max-message", max_message.to_string()),
            ],
        ),
    )?;
    reader.expect("ready")?;
    let scope = Scope::Dir(dir.path().to_path_buf());
    let err = |what: &str, e: mailslot::Error| format!("footprint memory: {what}: {e}");
    let mut writer = Writer::open_in(&scope, NAME).map_err(|e| err("open writer", e))?;
    let file_bytes = std::fs::metadata(&file)
        .map_err(|e| format!("footprint memory: {}: {e}", file.display()))?
        .len();
    // Batches of at most the capacity, each drained before the next: nothing is dropped, and
    // the ring's every page passes under the writer and the reader (twice the whole file).
    let rec = record(max_message) as u64;
    let batch = (capacity as u64 / rec).max(1);
    let total = (2 * file_bytes).div_ceil(rec).max(batch);
    let message = vec![0xa5u8; max_message];
    let (mut written, mut read, mut lost) = (0u64, 0u64, 0u64);
    while written < total {
        let n = batch.min(total - written);
        for _ in 0..n {
            writer.write(&message).map_err(|e| err("write", e))?;
        }
        written += n;
        reader.send("drain")?;
        let drained = reader.expect("drained")?;
        read += drained.u64("messages")?;
        lost += drained.u64("lost")?;
    }
    drop(writer);
    let meta = std::fs::metadata(&file)
        .map_err(|e| format!("footprint memory: {}: {e}", file.display()))?;
    reader.send("smaps")?;
    let rss = reader.expect("rss")?;
    let mappings = rss.u64("mappings")?;
    if mappings == 0 {
        return Err(format!(
            "footprint memory: the reader has no mapping of {} in its smaps",
            file.display()
        ));
    }
    reader.finish()?;
    Ok(Memory {
        capacity,
        max_message,
        file_bytes: meta.len(),
        tmpfs_bytes: meta.blocks() * 512,
        rss_bytes: rss.u64("bytes")?,
        written,
        read,
        lost,
    })
}

pub fn run(options: &Options) -> BenchResult<(Vec<Table>, Vec<Record>)> {
    let costs = write_cost(options)?;
    let mut records = Vec::new();
    let mut table = Table::new(
        format!(
            "footprint: write cost of a {SIZE}-byte message with idle instances (ns per write)"
        ),
        &[
            "instances (all idle)",
            "wall ns/write",
            "CPU ns/write",
            "wall vs 1",
            "CPU vs 1",
        ],
    );
    let one = &costs[0];
    for c in &costs {
        table.row(vec![
            c.instances.to_string(),
            format!("{:.1}", c.wall),
            format!("{:.1}", c.cpu),
            format!("{:.2}", c.wall / one.wall),
            format!("{:.2}", c.cpu / one.cpu),
        ]);
        records.push(Record::new(
            "footprint",
            vec![
                ("measure", "write".into()),
                ("instances", c.instances.into()),
                ("size", SIZE.into()),
                ("messages", options.messages.into()),
                ("rounds", options.rounds.into()),
                ("wall_ns_per_write", c.wall.into()),
                ("cpu_ns_per_write", c.cpu.into()),
            ],
        ));
    }
    table.note(format!(
        "{} writes of {SIZE} bytes per measurement by one writer process (after one untimed lap \
         of the ring), median of {} rounds; wall = monotonic clock around the loop, CPU = the \
         writer's user+sys (getrusage), each / writes. The name: shared, default capacity and \
         maximum message, drop-oldest, in a private runtime directory. Its instances are all \
         held by one helper process and are idle (opened, never read, so none sleeps and no \
         write wakes anyone): 1, then {} (every slot). Target: {} instances <= 1.5x 1.",
        options.messages, options.rounds, options.instances, options.instances
    ));

    let mut mem_table = Table::new(
        "footprint: memory of an active name (bytes)",
        &[
            "capacity",
            "max message",
            "bound",
            "file size",
            "tmpfs",
            "resident",
            "tmpfs vs bound",
            "resident vs bound",
            "written",
            "read",
            "lost",
        ],
    );
    for &capacity in &options.capacities {
        for &max_message in &options.max_messages {
            eprintln!("footprint: memory, capacity {capacity}, max message {max_message} ...");
            let m = memory(capacity, max_message)?;
            let bound = m.bound();
            mem_table.row(vec![
                m.capacity.to_string(),
                m.max_message.to_string(),
                bound.to_string(),
                m.file_bytes.to_string(),
                m.tmpfs_bytes.to_string(),
                m.rss_bytes.to_string(),
                format!("{:.2}", m.tmpfs_bytes as f64 / bound as f64),
                format!("{:.2}", m.rss_bytes as f64 / bound as f64),
                m.written.to_string(),
                m.read.to_string(),
                m.lost.to_string(),
            ]);
            records.push(Record::new(
                "footprint",
                vec![
                    ("measure", "memory".into()),
                    ("capacity", m.capacity.into()),
                    ("max_message", m.max_message.into()),
                    ("bound_bytes", bound.into()),
                    ("file_bytes", m.file_bytes.into()),
                    ("tmpfs_bytes", m.tmpfs_bytes.into()),
                    ("rss_bytes", m.rss_bytes.into()),
                    ("written", m.written.into()),
                    ("read", m.read.into()),
                    ("lost", m.lost.into()),
                ],
            ));
        }
    }
    mem_table.note(
        "bound = capacity + max message + 64 KiB. A reader opens the name with that capacity \
         and maximum message; maximum-size messages are written in batches of at most the \
         capacity, the reader draining each, until twice the file has passed through the ring \
         (every page written and read). tmpfs = st_blocks x 512 of the name's file in the \
         runtime directory; resident = the Rss of the reader's mappings of that file \
         (/proc/self/smaps), after the last batch.",
    );
    Ok((vec![table, mem_table], records))
}

// ---- child roles -------------------------------------------------------------------------

fn scope(args: &Args) -> BenchResult<Scope> {
    Ok(Scope::Dir(PathBuf::from(args.required("dir")?)))
}

/// `__child footprint-instances`: opens `--count` idle instances of the shared name, reports
/// `ready`; `check` reports how many are still open; exits when stdin closes.
pub fn instances_main(args: &Args) -> BenchResult<()> {
    let count: usize = args.need("count")?;
    let scope = scope(args)?;
    let dir = PathBuf::from(args.required("dir")?);
    let name = MailslotName::parse(NAME).map_err(|e| format!("footprint: {e}"))?;
    let servers = (0..count)
        .map(|i| {
            Server::builder(NAME)
                .shared(true)
                .scope(scope.clone())
                .open()
                .map_err(|e| format!("footprint: open instance {} of {count}: {e}", i + 1))
        })
        .collect::<BenchResult<Vec<Server>>>()?;
    proc::report("ready");
    while let Some(command) = proc::next_command() {
        if command == "check" {
            let open = mailslot::status_of(&dir, &name)
                .map_err(|e| format!("footprint: status: {e}"))?
                .map_or(0, |status| status.instances.len());
            proc::report(&format!("open count={open}"));
        }
    }
    drop(servers);
    Ok(())
}

/// `__child footprint-writer`: on `go`, laps the ring once untimed, then writes `--messages`
/// messages and reports `done wall=NS cpu=NS` (totals).
pub fn writer_main(args: &Args) -> BenchResult<()> {
    let messages: u64 = args.need("messages")?;
    let scope = scope(args)?;
    let file = name_file(Path::new(args.required("dir")?))?;
    let mut writer = Writer::open_in(&scope, NAME).map_err(|e| format!("open writer: {e}"))?;
    let lap = std::fs::metadata(&file)
        .map_err(|e| format!("footprint writer: {}: {e}", file.display()))?
        .len()
        .div_ceil(record(SIZE) as u64);
    let message = [0x5au8; SIZE];
    proc::report("ready");
    if proc::next_command().as_deref() != Some("go") {
        return Err("expected `go`".into());
    }
    for _ in 0..lap {
        writer.write(&message).map_err(|e| format!("write: {e}"))?;
    }
    let before = Usage::now();
    let start = sys::monotonic_ns();
    for _ in 0..messages {
        writer.write(&message).map_err(|e| format!("write: {e}"))?;
    }
    let wall = sys::monotonic_ns() - start;
    let cpu = Usage::now().since(before).cpu_ns();
    proc::report(&format!("done wall={wall} cpu={cpu}"));
    while proc::next_command().is_some() {}
    Ok(())
}

/// `__child footprint-reader`: opens the name with `--capacity` and `--max-message`; `drain`
/// reads everything there (`drained messages=N lost=N`); `smaps` reports the resident bytes
/// of this process's mappings of the name's file (`rss bytes=N mappings=N`).
pub fn reader_main(args: &Args) -> BenchResult<()> {
    let capacity: usize = args.need("capacity")?;
    let max_message: usize = args.need("max-message")?;
    let file = name_file(Path::new(args.required("dir")?))?;
    let mut server = Server::builder(NAME)
        .scope(scope(args)?)
        .capacity(capacity)
        .max_message_size(max_message)
        .read_timeout(Timeout::Immediate)
        .open()
        .map_err(|e| format!("footprint reader: open: {e}"))?;
    let mut buf = vec![0u8; max_message];
    proc::report("ready");
    while let Some(command) = proc::next_command() {
        match command.as_str() {
            "drain" => {
                let (mut messages, mut lost) = (0u64, 0u64);
                loop {
                    match server.recv_into(&mut buf) {
                        Ok(got) => {
                            messages += 1;
                            lost += got.lost;
                        }
                        Err(e) if e.kind() == ErrorKind::TimedOut => break,
                        Err(e) => return Err(format!("footprint reader: recv: {e}")),
                    }
                }
                proc::report(&format!("drained messages={messages} lost={lost}"));
            }
            "smaps" => {
                let (bytes, mappings) = resident_of(&file)?;
                proc::report(&format!("rss bytes={bytes} mappings={mappings}"));
            }
            other => return Err(format!("footprint reader: unknown command `{other}`")),
        }
    }
    Ok(())
}

/// The resident bytes of this process's mappings of `file` and how many there are: the sum of
/// the `Rss:` lines of the entries of `/proc/self/smaps` for the file's device and inode (not
/// its path: the library creates a name under a draft name and links it into place, so the
/// mapping may be listed under the draft's path).
fn resident_of(file: &Path) -> BenchResult<(u64, u64)> {
    let meta = std::fs::metadata(file)
        .map_err(|e| format!("footprint reader: {}: {e}", file.display()))?;
    // glibc's encoding of a dev_t, as /proc prints it: "major:minor" in hex.
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let want = (format!("{major:02x}:{minor:02x}"), meta.ino().to_string());
    let smaps = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("footprint reader: /proc/self/smaps: {e}"))?;
    let (mut bytes, mut mappings) = (0u64, 0u64);
    let mut ours = false;
    for line in smaps.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Rss:", kb, ..] if ours => {
                let kb: u64 = kb
                    .parse()
                    .map_err(|_| format!("footprint reader: bad smaps line `{line}`"))?;
                bytes += kb * 1024;
            }
            [key, ..] if key.ends_with(':') => {}
            // A mapping's header: range, perms, offset, device, inode, path.
            [_, _, _, device, inode, ..] => {
                ours = (*device, *inode) == (want.0.as_str(), want.1.as_str());
                mappings += u64::from(ours);
            }
            _ => ours = false,
        }
    }
    Ok((bytes, mappings))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::peers::mailslot::ring_for;

    /// The bench sizes rounds, bounds and laps with its own model of the library's ring (the
    /// library does not export it); a name's file must be the header plus exactly that ring.
    /// Capacities on either side of a page boundary make a wrong record size show.
    #[test]
    fn the_ring_model_matches_the_files_the_library_makes() {
        let dir = TempDir::new("ring-model").expect("temp dir");
        let scope = Scope::Dir(dir.path().to_path_buf());
        let mut headers = Vec::new();
        for (i, max) in [64usize, 1000, 65_536].into_iter().enumerate() {
            let edge = 64 * 4096 - record(max);
            for capacity in [edge, edge + 1, 1 << 20] {
                let name = format!("ring-model-{i}-{capacity}");
                let server = Server::builder(&name)
                    .scope(scope.clone())
                    .capacity(capacity)
                    .max_message_size(max)
                    .open()
                    .expect("open");
                let file = dir
                    .path()
                    .join(MailslotName::parse(&name).expect("name").file_name());
                let len = std::fs::metadata(&file).expect("the name's file").len();
                let ring = ring_for(capacity, max) as u64;
                assert!(
                    len > ring,
                    "capacity {capacity}, max {max}: file {len}, ring {ring}"
                );
                headers.push((len - ring, capacity, max));
                drop(server);
            }
        }
        let first = headers[0].0;
        assert!(
            headers.iter().all(|h| h.0 == first),
            "file - modelled ring should be one fixed header: {headers:?}"
        );
    }

    /// `resident_of` finds a mapping by device and inode and sums its resident pages.
    #[test]
    fn resident_of_counts_the_touched_pages_of_a_mapping() {
        let dir = TempDir::new("smaps").expect("temp dir");
        let path = dir.path().join("mapped");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .expect("create");
        file.set_len(16 * 4096).expect("size");
        assert_eq!(resident_of(&path).expect("smaps"), (0, 0));
        let map = sys::SharedWords::map(&file, 16 * 1024).expect("map");
        for page in [0, 4, 8, 12] {
            map.word(page * 1024).store(1, Ordering::Relaxed);
        }
        assert_eq!(resident_of(&path).expect("smaps"), (4 * 4096, 1));
        // A new name for the same file (as the library's draft becomes the name): the same
        // mapping.
        let renamed = dir.path().join("renamed");
        std::fs::rename(&path, &renamed).expect("rename");
        assert_eq!(resident_of(&renamed).expect("smaps"), (4 * 4096, 1));
    }
}

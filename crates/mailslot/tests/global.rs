//! The global scope through the host service, from the library: a reader that polls its
//! descriptor (as `Callback`, `AsyncServer` and epoll users do) while the service is killed and
//! restarted neither spins on the dead connection nor misses the restart. The service runs in
//! a child process (this test binary in the `service` role).

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::TestDir;
use mailslot::{ErrorKind, Scope, Server, Timeout, Writer};

#[test]
fn child_process() {
    common::child_main();
}

/// A host service of the test's own, in a child process, which the library (this process)
/// uses through `MAILSLOT_GLOBAL_DIR`. The tests of this binary take turns: the variable is
/// the process's.
struct Service {
    // Dropped in this order: the service, its directory, then the next test's turn.
    proc: common::Proc,
    dir: TestDir,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Service {
    fn start(tag: &str) -> Service {
        static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let dir = TestDir::reserve(tag);
        std::env::set_var("MAILSLOT_GLOBAL_DIR", dir.path());
        let proc = spawn_service(&dir);
        Service {
            proc,
            dir,
            _turn: turn,
        }
    }
}

fn spawn_service(dir: &TestDir) -> common::Proc {
    let proc = common::spawn("service", "service", &[("MS_DIR", dir.env())]);
    proc.expect("ready");
    proc
}

#[test]
fn a_polling_reader_rides_out_a_service_restart_without_spinning() {
    let mut service = Service::start("global-svc");
    let mut server = Server::builder("polled")
        .shared(true)
        .scope(Scope::Global)
        .mode(0o600)
        .read_timeout(Timeout::Immediate)
        .open()
        .unwrap();
    let mut writer = Writer::open_in(&Scope::Global, "polled").unwrap();
    writer.write(b"before").unwrap();
    writer.flush().unwrap();
    assert!(common::poll_readable(server.as_fd(), 5000));
    assert_eq!(server.try_recv().unwrap().data, b"before");
    assert_eq!(server.try_recv().unwrap_err().kind(), ErrorKind::TimedOut);

    service.proc.kill9();
    // For one second, count how often the descriptor wakes us: a poller on a dead
    // connection would wake continuously; ours wakes only to try to rejoin, every 100 ms.
    let until = Instant::now() + Duration::from_secs(1);
    let mut wakes = 0;
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now()).as_millis() as i32;
        if common::poll_readable(server.as_fd(), left.max(1)) {
            wakes += 1;
            assert!(
                wakes < 100,
                "the descriptor stays readable while the service is down"
            );
            let err = server.try_recv().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        }
    }
    assert!(wakes >= 2, "no attempt to rejoin in a second ({wakes})");
    assert!(writer.write(b"lost").is_err() || writer.flush().is_err());

    let _restarted = spawn_service(&service.dir);
    // The reader rejoins on its next wake-up, by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names = mailslot::service::status().unwrap_or_default();
        if names
            .iter()
            .any(|n| n.name == "polled" && n.instances.len() == 1)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reader did not rejoin: {names:?}"
        );
        if common::poll_readable(server.as_fd(), 200) {
            let _ = server.try_recv();
        }
    }
    let mut writer = Writer::open_in(&Scope::Global, "polled").unwrap();
    writer.write(b"after").unwrap();
    writer.flush().unwrap();
    assert!(common::poll_readable(server.as_fd(), 5000));
    let got = server.try_recv().unwrap();
    assert_eq!((got.data.as_slice(), got.lost), (&b"after"[..], 0));
}

/// Short messages go through the writer's submission ring, long ones as packets: mixed, they
/// arrive whole and in order, and a message above the name's maximum is refused with nothing
/// queued.
#[test]
fn short_and_long_messages_keep_their_order() {
    let _service = Service::start("global-mixed");
    let mut server = Server::builder("mixed")
        .scope(Scope::Global)
        .capacity(8 << 20)
        .open()
        .unwrap();
    let mut writer = Writer::open_in(&Scope::Global, "mixed").unwrap();
    let sizes = [0usize, 1, 64, 40_000, 7, 1 << 20, 100, 32_768, 32_769, 3];
    for (i, size) in sizes.iter().enumerate() {
        writer.write(&vec![i as u8; *size]).unwrap();
    }
    writer.flush().unwrap();
    for (i, size) in sizes.iter().enumerate() {
        let got = server.recv().unwrap();
        assert_eq!((got.data.len(), got.lost), (*size, 0), "message {i}");
        assert!(got.data.iter().all(|b| *b == i as u8), "message {i}");
    }
    let err = writer.write(&vec![0; (1 << 20) + 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge);
    // Ten thousand short ones, many more than the submission ring holds at once.
    for i in 0..10_000u32 {
        writer.write(&i.to_le_bytes()).unwrap();
    }
    writer.flush().unwrap();
    for i in 0..10_000u32 {
        assert_eq!(server.recv().unwrap().data, i.to_le_bytes());
    }
}

/// An async reader of a global name (tokio, through the descriptor the service rings).
#[cfg(feature = "tokio")]
#[test]
fn an_async_reader_gets_global_messages() {
    let _service = Service::start("global-async");
    let server = Server::builder("async")
        .shared(true)
        .scope(Scope::Global)
        .open()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut server = mailslot::AsyncServer::new(server).unwrap();
        let writer = std::thread::spawn(|| {
            let mut writer = Writer::open_in(&Scope::Global, "async").unwrap();
            for i in 0..100u32 {
                writer.write(&i.to_le_bytes()).unwrap();
                if i % 10 == 0 {
                    writer.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            writer.flush().unwrap();
        });
        for i in 0..100u32 {
            let got = tokio::time::timeout(Duration::from_secs(20), server.recv())
                .await
                .expect("a message within 20 s")
                .unwrap();
            assert_eq!(got.data, i.to_le_bytes());
        }
        writer.join().unwrap();
    });
}

/// `deliver one` on a global name: the service hands out the turns; each message reaches
/// exactly one instance, whether the instances block, poll their descriptor, or come and go.
#[test]
fn deliver_one_gives_each_message_to_exactly_one_instance() {
    let _service = Service::start("global-one");
    let open = || {
        Server::builder("jobs")
            .shared(true)
            .delivery(mailslot::Delivery::One)
            .scope(Scope::Global)
            .read_timeout(Timeout::After(Duration::from_millis(500)))
            .open()
            .unwrap()
    };
    const N: u32 = 3000;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut readers = Vec::new();
    // Two blocking readers and one that polls its descriptor.
    for polling in [false, false, true] {
        let mut server = open();
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut got = 0;
            loop {
                let message = if polling {
                    match server.try_recv() {
                        Ok(m) => Ok(m),
                        Err(e) if e.kind() == ErrorKind::TimedOut => {
                            if !common::poll_readable(server.as_fd(), 500) {
                                break;
                            }
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    server.recv()
                };
                match message {
                    Ok(m) => {
                        assert_eq!(m.lost, 0);
                        tx.send(u32::from_le_bytes(m.data[..4].try_into().unwrap()))
                            .unwrap();
                        got += 1;
                    }
                    Err(e) if e.kind() == ErrorKind::TimedOut => break,
                    Err(e) => panic!("{e}"),
                }
            }
            got
        }));
    }
    drop(tx);
    let mut writer = Writer::open_in(&Scope::Global, "jobs").unwrap();
    for i in 0..N {
        writer.write(&i.to_le_bytes()).unwrap();
    }
    writer.flush().unwrap();
    let counts: Vec<u32> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    let mut seen: Vec<u32> = rx.iter().collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..N).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert_eq!(counts.iter().sum::<u32>(), N);
    // A message larger than a reader's buffer stays queued for it. (The readers are gone, so
    // the name was closed with them: a new server, a new writer.)
    let mut server = open();
    let mut writer = Writer::open_in(&Scope::Global, "jobs").unwrap();
    writer.write(&[7; 100]).unwrap();
    writer.flush().unwrap();
    let mut small = [0u8; 10];
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        server.recv_into(&mut small).unwrap_err().kind(),
        ErrorKind::InsufficientBuffer
    );
    assert_eq!(server.recv().unwrap().data, vec![7; 100]);
}

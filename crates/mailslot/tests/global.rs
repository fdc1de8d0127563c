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

fn start_service(dir: &TestDir) -> common::Proc {
    let proc = common::spawn("service", "service", &[("MS_DIR", dir.env())]);
    proc.expect("ready");
    proc
}

#[test]
fn a_polling_reader_rides_out_a_service_restart_without_spinning() {
    let outer = TestDir::new("global");
    let dir = TestDir::reserve("global-svc");
    // The only test of this binary that reads the environment's global directory.
    std::env::set_var("MAILSLOT_GLOBAL_DIR", dir.path());
    let _ = &outer;
    let mut service = start_service(&dir);
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

    service.kill9();
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

    let _service = start_service(&dir);
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

use super::*;

const SEC: Duration = Duration::from_secs(1);

fn text(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

struct Harness {
    mb: Mailbox,
    now: Instant,
    out: Vec<(Ticket, Resolution)>,
}

impl Harness {
    fn new(config: MailboxConfig) -> Self {
        Self {
            mb: Mailbox::new(config),
            now: Instant::now(),
            out: Vec::new(),
        }
    }

    fn get(&mut self, id: &str, wait: Duration) -> Result<Outcome, MailboxError> {
        self.mb.get(id, wait, self.now, &mut self.out)
    }

    fn set(&mut self, id: &str, t: &str, wait: Duration) -> Result<Outcome, MailboxError> {
        self.mb.set(id, text(t), wait, self.now, &mut self.out)
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.mb.expire(self.now, &mut self.out);
    }

    fn take_out(&mut self) -> Vec<(Ticket, Resolution)> {
        std::mem::take(&mut self.out)
    }
}

fn pending(o: Result<Outcome, MailboxError>) -> Ticket {
    match o {
        Ok(Outcome::Pending(t)) => t,
        other => panic!("expected pending, got {other:?}"),
    }
}

#[test]
fn a_waiting_reader_gets_the_next_text() {
    let mut h = Harness::new(MailboxConfig::default());
    let reader = pending(h.get("x", 600 * SEC));
    assert_eq!(
        h.set("x", "hello world\n", 10 * SEC),
        Ok(Outcome::Done(Resolution::Taken))
    );
    assert_eq!(
        h.take_out(),
        vec![(reader, Resolution::Text(text("hello world\n")))]
    );
    assert_eq!(h.mb.in_flight(), 0);
}

#[test]
fn a_queued_text_is_read_once_and_its_writer_told() {
    let mut h = Harness::new(MailboxConfig::default());
    let writer = pending(h.set("x", "one", 10 * SEC));
    assert_eq!(
        h.get("x", Duration::ZERO),
        Ok(Outcome::Done(Resolution::Text(text("one"))))
    );
    assert_eq!(h.take_out(), vec![(writer, Resolution::Taken)]);
    // Read once: a second reader finds nothing.
    assert_eq!(
        h.get("x", Duration::ZERO),
        Ok(Outcome::Done(Resolution::TimedOut))
    );
    assert_eq!(h.mb.queued(), 0);
}

#[test]
fn texts_for_one_id_are_read_in_order() {
    let mut h = Harness::new(MailboxConfig::default());
    for t in ["a", "b", "c"] {
        pending(h.set("x", t, 10 * SEC));
    }
    pending(h.set("y", "other", 10 * SEC));
    for want in ["a", "b", "c"] {
        assert_eq!(
            h.get("x", Duration::ZERO),
            Ok(Outcome::Done(Resolution::Text(text(want))))
        );
    }
    assert_eq!(h.mb.queued(), 1);
}

#[test]
fn readers_are_served_in_order() {
    let mut h = Harness::new(MailboxConfig::default());
    let first = pending(h.get("x", 10 * SEC));
    let second = pending(h.get("x", 10 * SEC));
    h.set("x", "1", SEC).unwrap();
    h.set("x", "2", SEC).unwrap();
    assert_eq!(
        h.take_out(),
        vec![
            (first, Resolution::Text(text("1"))),
            (second, Resolution::Text(text("2")))
        ]
    );
}

#[test]
fn zero_timeouts_return_at_once_and_keep_nothing() {
    let mut h = Harness::new(MailboxConfig::default());
    assert_eq!(
        h.get("x", Duration::ZERO),
        Ok(Outcome::Done(Resolution::TimedOut))
    );
    assert_eq!(
        h.set("x", "t", Duration::ZERO),
        Ok(Outcome::Done(Resolution::TimedOut))
    );
    assert_eq!((h.mb.in_flight(), h.mb.queued()), (0, 0));
}

#[test]
fn waits_time_out_and_withdraw_texts() {
    let mut h = Harness::new(MailboxConfig::default());
    let reader = pending(h.get("r", 2 * SEC));
    let writer = pending(h.set("w", "t", 5 * SEC));
    h.advance(SEC);
    assert!(h.take_out().is_empty());
    assert_eq!(h.mb.next_deadline(), Some(h.now + SEC));
    h.advance(SEC);
    assert_eq!(h.take_out(), vec![(reader, Resolution::TimedOut)]);
    h.advance(3 * SEC);
    assert_eq!(h.take_out(), vec![(writer, Resolution::TimedOut)]);
    assert_eq!(
        h.get("w", Duration::ZERO),
        Ok(Outcome::Done(Resolution::TimedOut))
    );
    assert_eq!((h.mb.in_flight(), h.mb.queued()), (0, 0));
    assert_eq!(h.mb.next_deadline(), None);
}

#[test]
fn a_client_that_hangs_up_frees_its_place() {
    let mut h = Harness::new(MailboxConfig::default());
    let reader = pending(h.get("x", 10 * SEC));
    assert!(h.mb.cancel(reader));
    let writer = pending(h.set("x", "t", 10 * SEC));
    assert!(h.mb.cancel(writer));
    assert!(!h.mb.cancel(writer), "cancelling twice is harmless");
    assert_eq!((h.mb.in_flight(), h.mb.queued()), (0, 0));
    // The withdrawn text is not read, and the cancelled reader got nothing.
    assert_eq!(
        h.get("x", Duration::ZERO),
        Ok(Outcome::Done(Resolution::TimedOut))
    );
    assert!(h.take_out().is_empty());
}

#[test]
fn limits() {
    let mut h = Harness::new(MailboxConfig {
        max_body: 4,
        max_queued_per_id: 2,
        max_queued_total: 3,
        max_in_flight: 4,
        ..MailboxConfig::default()
    });
    assert_eq!(
        h.set("x", "12345", SEC),
        Err(MailboxError::TooLarge { max: 4 })
    );
    pending(h.set("x", "1", SEC));
    pending(h.set("x", "2", SEC));
    assert_eq!(h.set("x", "3", SEC), Err(MailboxError::QueueFull));
    pending(h.set("y", "1", SEC));
    assert_eq!(h.set("z", "1", SEC), Err(MailboxError::Busy));
    pending(h.get("r", SEC));
    assert_eq!(h.get("s", SEC), Err(MailboxError::Busy));
    // Refusals change nothing.
    assert_eq!((h.mb.in_flight(), h.mb.queued()), (4, 3));
}

fn bad_id() -> MailboxError {
    MailboxError::BadId {
        max: 64,
        alphabet: DEFAULT_ID_ALPHABET.to_owned(),
    }
}

#[test]
fn the_id_alphabet_is_configurable() {
    let mb = Mailbox::new(MailboxConfig {
        id_alphabet: "abc".into(),
        ..MailboxConfig::default()
    });
    assert!(mb.parse_query("get=cab").is_ok());
    assert!(matches!(
        mb.parse_query("get=abd"),
        Err(MailboxError::BadId { .. })
    ));
}

#[test]
fn queries() {
    let mb = Mailbox::new(MailboxConfig::default());
    assert_eq!(
        mb.parse_query("get=abc&timeoutms=600000"),
        Ok(Op::Get {
            id: "abc".into(),
            wait: 600 * SEC
        })
    );
    assert_eq!(
        mb.parse_query("set=a.b_c~d-e"),
        Ok(Op::Set {
            id: "a.b_c~d-e".into(),
            wait: 20 * 60 * SEC
        })
    );
    assert_eq!(mb.parse_query(""), Err(MailboxError::NoOp));
    assert_eq!(mb.parse_query("timeoutms=5"), Err(MailboxError::NoOp));
    assert_eq!(mb.parse_query("get=a&set=a"), Err(MailboxError::BothOps));
    assert_eq!(
        mb.parse_query("get=a&get=b"),
        Err(MailboxError::Repeated("get"))
    );
    assert_eq!(mb.parse_query("get="), Err(bad_id()));
    assert_eq!(mb.parse_query("get=a%2Fb"), Err(bad_id()));
    assert_eq!(
        mb.parse_query(&format!("get={}", "a".repeat(65))),
        Err(bad_id())
    );
    assert_eq!(
        mb.parse_query("get=a&timeoutms=-1"),
        Err(MailboxError::BadTimeout)
    );
    assert_eq!(
        mb.parse_query("get=a&timeoutms=x"),
        Err(MailboxError::BadTimeout)
    );
    assert_eq!(
        mb.parse_query("get=a&timeoutms=1200001"),
        Err(MailboxError::TimeoutTooLong { max_ms: 1_200_000 })
    );
}

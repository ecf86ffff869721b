//! The pipelined reader (the default) and the parallel reader (with one and with three parsing
//! threads, with and without a fast path) against the sequential one: the same records, the same errors at the same lines,
//! the same skip reports, on every kind of input; and a reader dropped early stops its
//! background threads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, Cursor, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moat_format::{ParallelReader, ReadOptions, Reader};
use moat_types::{Exchange, ExchangeView, Label};
use proptest::prelude::*;

fn line(ts_secs: u64, account: &str) -> String {
    format!(
        r#"{{"v":1,"ts":"2026-04-01T{:02}:{:02}:{:02}Z","account_id":"{account}","request":{{"messages":[{{"role":"user","content":"hi\nthere"}}]}}}}"#,
        ts_secs / 3600 % 24,
        ts_secs / 60 % 60,
        ts_secs % 60
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// What both readers tell besides their records.
trait Position {
    /// The skip report, and the last line number with the input's name.
    fn tail(&self) -> [String; 2];
}

impl Position for Reader<Exchange> {
    fn tail(&self) -> [String; 2] {
        let (skipped, line, path) = (self.skipped(), self.line(), self.path());
        [format!("{skipped:?}"), format!("line {line} of {path}")]
    }
}

impl Position for ParallelReader<Exchange, Exchange> {
    fn tail(&self) -> [String; 2] {
        let (skipped, line, path) = (self.skipped(), self.line(), self.path());
        [format!("{skipped:?}"), format!("line {line} of {path}")]
    }
}

/// Everything a caller can observe of a read: each result, then the skip report and the last
/// line number.
fn observe<R>(reader: Result<R, moat_format::FormatError>) -> Vec<String>
where
    R: Iterator<Item = Result<Exchange, moat_format::FormatError>> + Position,
{
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => return vec![format!("open: {e:?}")],
    };
    let mut seen: Vec<String> = reader.by_ref().map(|r| format!("{r:?}")).collect();
    seen.extend(reader.tail());
    seen
}

/// Reads `make()` with every reader and asserts they agree; returns what they saw.
fn both<R: Read + Send + 'static>(make: impl Fn() -> R, opts: ReadOptions) -> Vec<String> {
    let sequential = observe(Reader::from_reader_sequential("in.jsonl", make(), opts));
    let pipelined = observe(Reader::from_reader("in.jsonl", make(), opts));
    let parallel = |workers| {
        observe(ParallelReader::from_reader(
            "in.jsonl",
            make(),
            opts,
            workers,
            |x: Exchange| x,
        ))
    };
    // The fast path reads lines as views, and declines some valid ones to the owned parse.
    let fast = |workers| {
        observe(ParallelReader::from_reader_fast(
            "in.jsonl",
            make(),
            opts,
            workers,
            |line: &str| {
                ExchangeView::parse(line)
                    .filter(|_| line.len() % 3 != 0)
                    .map(|v| (Some(v.ts), v.to_exchange()))
            },
            |x: Exchange| x,
        ))
    };
    for (name, seen) in [
        ("pipelined", &pipelined),
        ("parallel, 1 worker", &parallel(1)),
        ("parallel, 3 workers", &parallel(3)),
        ("parallel fast, 1 worker", &fast(1)),
        ("parallel fast, 3 workers", &fast(3)),
    ] {
        assert_eq!(seen.len(), sequential.len(), "{name}: number of results");
        for (i, (p, s)) in seen.iter().zip(&sequential).enumerate() {
            assert_eq!(p, s, "{name}: result {i}");
        }
    }
    pipelined
}

fn both_bytes(bytes: &[u8], opts: ReadOptions) -> Vec<String> {
    let bytes = bytes.to_vec();
    both(move || Cursor::new(bytes.clone()), opts)
}

fn skipping() -> ReadOptions {
    ReadOptions {
        skip_bad_lines: true,
        ..ReadOptions::default()
    }
}

/// Each option set the equivalence tests try.
fn option_sets() -> [ReadOptions; 3] {
    [
        ReadOptions::default(),
        skipping(),
        ReadOptions {
            skip_bad_lines: true,
            max_line_bytes: 150,
        },
    ]
}

/// Checks plain and gzip forms of `text` under every option set.
fn agree_everywhere(text: &[u8]) {
    for opts in option_sets() {
        both_bytes(text, opts);
        both_bytes(&gzip(text), opts);
    }
}

fn many_lines(n: u64) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&line(i / 7, &format!("acct_{i}")));
        text.push('\n');
    }
    text
}

#[test]
fn valid_file_across_many_batches_reads_the_same() {
    // About 2.5 MiB: several batches and many reads of the decoder.
    let text = many_lines(20_000);
    let seen = both_bytes(text.as_bytes(), ReadOptions::default());
    assert_eq!(seen.len(), 20_002);
    assert!(seen[19_999].starts_with("Ok("), "{}", seen[19_999]);
    let seen = both_bytes(&gzip(text.as_bytes()), ReadOptions::default());
    assert_eq!(seen.last().unwrap(), "line 20000 of in.jsonl");
}

#[test]
fn multi_member_gzip_reads_the_same() {
    let text = many_lines(6_000);
    let (a, b) = text.as_bytes().split_at(text.len() / 3);
    // Split inside a line, as a writer that cuts members by size does.
    let mut bytes = gzip(a);
    bytes.extend(gzip(b));
    let seen = both_bytes(&bytes, ReadOptions::default());
    assert_eq!(seen.len(), 6_002);
}

#[test]
fn malformed_lines_read_the_same() {
    let text = format!(
        "{}\n{{not json\n{}\n{}\n\u{1}\n{}\n",
        line(0, "a"),
        r#"{"v":2,"ts":"2026-04-01T00:00:00Z","account_id":"x","request":{"messages":[]}}"#,
        r#"{"v":1,"ts":"2026-04-01T00:00:00Z","account_id":"","request":{"messages":[]}}"#,
        line(1, "b"),
    );
    agree_everywhere(text.as_bytes());
    let seen = both_bytes(text.as_bytes(), ReadOptions::default());
    assert_eq!(seen.len(), 4, "stops at the first bad line: {seen:?}");
    assert!(seen[1].contains("line: Some(2)"), "{}", seen[1]);
    let seen = both_bytes(text.as_bytes(), skipping());
    assert!(seen[2].contains("count: 4"), "{}", seen[2]);
}

#[test]
fn out_of_order_lines_read_the_same() {
    let text = [line(5, "a"), line(6, "b"), line(1, "c"), line(7, "d")].join("\n");
    agree_everywhere(text.as_bytes());
    let seen = both_bytes(text.as_bytes(), skipping());
    assert!(seen[2].contains("OutOfOrder") && seen[2].contains("line: Some(3)"));
}

#[test]
fn truncated_gzip_reads_the_same() {
    let bytes = gzip(many_lines(30_000).as_bytes());
    for cut in [10, bytes.len() / 3, bytes.len() / 2, bytes.len() - 5] {
        let seen = both_bytes(&bytes[..cut], ReadOptions::default());
        let last_result = &seen[seen.len() - 3];
        assert!(last_result.contains("Io("), "cut {cut}: {last_result}");
    }
}

#[test]
fn corrupt_gzip_reads_the_same() {
    // The decoder drops what it inflated in a call that fails, so where the lines before the
    // error end depends on the size of the reads; with skipping, the garbage inflated before
    // the corruption is detected shows in the skip count.
    let clean = gzip(many_lines(30_000).as_bytes());
    for (i, at) in [clean.len() / 5, clean.len() / 2, clean.len() - 200]
        .into_iter()
        .enumerate()
    {
        let mut bytes = clean.clone();
        for (j, b) in bytes[at..at + 16].iter_mut().enumerate() {
            *b ^= 0x5a ^ (i * 31 + j) as u8;
        }
        for opts in option_sets() {
            let seen = both_bytes(&bytes, opts);
            assert!(seen.len() > 3, "the intact prefix is read");
        }
    }
}

#[test]
fn over_long_lines_read_the_same() {
    // Long lines inside one read, across reads (256 KiB) and batches (1 MiB), at the end of
    // input without a newline, and right at the limit.
    let limit = 300_000;
    let exact = format!(
        r#"{{"v":1,"ts":"2026-04-01T00:00:09Z","account_id":"{}","request":{{"prompt":"p","messages":[]}}}}"#,
        "y".repeat(limit - 90)
    );
    assert_eq!(exact.len(), limit);
    let text = [
        line(0, "a"),
        "x".repeat(limit + 1),
        line(1, "b"),
        "z".repeat(3 << 20),
        exact.clone(),
        line(10, "c"),
        "w".repeat(limit * 2),
    ]
    .join("\n");
    let opts = ReadOptions {
        skip_bad_lines: true,
        max_line_bytes: limit,
    };
    let seen = both_bytes(text.as_bytes(), opts);
    assert_eq!(seen.len(), 4 + 2, "{seen:?}");
    assert!(seen[4].contains("count: 3"), "{}", seen[4]);
    both_bytes(&gzip(text.as_bytes()), opts);
    both_bytes(
        text.as_bytes(),
        ReadOptions {
            skip_bad_lines: false,
            max_line_bytes: limit,
        },
    );
    // A limit of zero makes every non-empty line too long and empty ones fine.
    both_bytes(
        b"\n\nab\n\n{}\n",
        ReadOptions {
            skip_bad_lines: true,
            max_line_bytes: 0,
        },
    );
}

#[test]
fn many_over_long_lines_read_the_same() {
    // More lines than a batch holds, none of whose bytes are kept.
    let text = "ab\n".repeat(40_000);
    let seen = both_bytes(
        text.as_bytes(),
        ReadOptions {
            skip_bad_lines: true,
            max_line_bytes: 1,
        },
    );
    assert!(seen[0].contains("count: 40000"), "{}", seen[0]);
}

#[test]
fn empty_input_reads_the_same() {
    agree_everywhere(b"");
    agree_everywhere(b"\n");
    agree_everywhere(b"\n\n  \r\n");
    let seen = both_bytes(b"", ReadOptions::default());
    assert_eq!(seen.last().unwrap(), "line 0 of in.jsonl");
}

#[test]
fn missing_trailing_newline_reads_the_same() {
    let text = [line(0, "a"), line(1, "b")].join("\n");
    let seen = both_bytes(text.as_bytes(), ReadOptions::default());
    assert_eq!(seen.len(), 4);
    agree_everywhere(text.as_bytes());
    agree_everywhere(b"{");
}

#[test]
fn crlf_reads_the_same() {
    let text = [line(0, "a"), line(1, "b"), String::new()].join("\r\n");
    let seen = both_bytes(text.as_bytes(), ReadOptions::default());
    assert_eq!(seen.len(), 4);
    agree_everywhere(text.as_bytes());
    agree_everywhere(b"\r\n\r\r\n{}\r");
}

#[test]
fn other_record_kinds_read_the_same() {
    let text = "{\"account_id\":\"a\",\"class\":\"distill\",\"campaign\":\"c\",\"tactic\":null}\n{\"account_id\":\"b\",\"class\":\"hacker\"}\n";
    let read = |pipelined: bool| -> Vec<String> {
        let input = Cursor::new(text.as_bytes().to_vec());
        let reader = if pipelined {
            Reader::<Label>::from_reader("labels.jsonl", input, ReadOptions::default())
        } else {
            Reader::<Label>::from_reader_sequential("labels.jsonl", input, ReadOptions::default())
        };
        reader.unwrap().map(|r| format!("{r:?}")).collect()
    };
    assert_eq!(read(true), read(false));
    assert_eq!(read(true).len(), 2);
}

/// A source that hands out bytes in uneven pieces, is sometimes interrupted, and fails for
/// good at `fail_at` bytes.
struct Awkward {
    data: Vec<u8>,
    pos: usize,
    calls: usize,
    fail_at: Option<usize>,
}

impl Read for Awkward {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "try again"));
        }
        if self.fail_at.is_some_and(|f| self.pos >= f) {
            return Err(io::Error::other("disk on fire"));
        }
        let limit = self.fail_at.unwrap_or(usize::MAX).min(self.data.len());
        let want = buf.len().min(1 + (self.calls * 7919) % 70_000);
        let n = want.min(limit - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn short_reads_interruptions_and_io_errors_read_the_same() {
    let text = many_lines(5_000).into_bytes();
    let gz = gzip(&text);
    for (data, fail_at) in [
        (text.clone(), None),
        (text.clone(), Some(text.len() / 2)),
        (text.clone(), Some(0)),
        (gz.clone(), None),
        (gz.clone(), Some(gz.len() / 3)),
    ] {
        for opts in option_sets() {
            let data = data.clone();
            let seen = both(
                move || Awkward {
                    data: data.clone(),
                    pos: 0,
                    calls: 0,
                    fail_at,
                },
                opts,
            );
            if fail_at == Some(0) {
                assert!(seen[0].starts_with("open: "), "{}", seen[0]);
            } else if fail_at.is_some() {
                let last_result = &seen[seen.len() - 3];
                assert!(last_result.contains("Err("), "{last_result}");
            }
        }
    }
}

/// An endless source of valid lines that reports when it is dropped, which happens when the
/// background thread that owns it ends.
struct Endless {
    line: Vec<u8>,
    pos: usize,
    reads: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        for b in buf.iter_mut() {
            *b = self.line[self.pos];
            self.pos = (self.pos + 1) % self.line.len();
        }
        Ok(buf.len())
    }
}

impl Drop for Endless {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

type Records = Box<dyn Iterator<Item = Result<Exchange, moat_format::FormatError>>>;

/// Reads a little of an endless input with the reader `open` makes, then checks that the
/// read-ahead stays bounded (below `max_reads` reads of 256 KiB) and that dropping the reader
/// stops its threads.
fn stops_when_dropped_mid_file(max_reads: usize, open: impl FnOnce(Endless) -> Records) {
    let reads = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let source = Endless {
        line: format!("{}\n", line(0, "a")).into_bytes(),
        pos: 0,
        reads: reads.clone(),
        dropped: dropped.clone(),
    };
    let mut reader = open(source);
    for r in reader.by_ref().take(1_000) {
        r.unwrap();
    }
    // The threads read ahead only a bounded amount while the reader is idle: the count of
    // reads settles (parsing threads in a debug build may take a while to fill their queues).
    let settle = Instant::now();
    let mut ahead = reads.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = reads.load(Ordering::SeqCst);
        if now == ahead {
            break;
        }
        ahead = now;
        assert!(
            settle.elapsed() < Duration::from_secs(20),
            "read-ahead is bounded"
        );
    }
    assert!(ahead < max_reads, "{ahead} reads of 256 KiB ahead");

    let start = Instant::now();
    drop(reader);
    while !dropped.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "background thread still running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn dropping_the_reader_mid_file_stops_its_thread() {
    // 4 batches of about 1 MiB queued, one being filled, one being parsed.
    stops_when_dropped_mid_file(64, |source| {
        Box::new(
            Reader::<Exchange>::from_reader("endless.jsonl", source, ReadOptions::default())
                .unwrap(),
        )
    });
}

#[test]
fn dropping_the_parallel_reader_mid_file_stops_its_threads() {
    // Besides the splitter's, 8 parsed batches per worker queued and one per worker parsed.
    stops_when_dropped_mid_file(160, |source| {
        Box::new(
            ParallelReader::from_reader(
                "endless.jsonl",
                source,
                ReadOptions::default(),
                2,
                |x: Exchange| x,
            )
            .unwrap(),
        )
    });
}

#[test]
fn dropping_the_reader_before_reading_stops_its_thread() {
    let dropped = Arc::new(AtomicBool::new(false));
    let source = Endless {
        line: b"{}\n".to_vec(),
        pos: 0,
        reads: Arc::new(AtomicUsize::new(0)),
        dropped: dropped.clone(),
    };
    let reader =
        Reader::<Exchange>::from_reader("endless.jsonl", source, ReadOptions::default()).unwrap();
    drop(reader);
    let start = Instant::now();
    while !dropped.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn open_reads_the_same_as_open_sequential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traffic.jsonl.gz");
    std::fs::write(&path, gzip(many_lines(3_000).as_bytes())).unwrap();
    let a: Vec<String> = Reader::<Exchange>::open(&path, ReadOptions::default())
        .unwrap()
        .map(|r| format!("{r:?}"))
        .collect();
    let b: Vec<String> = Reader::<Exchange>::open_sequential(&path, ReadOptions::default())
        .unwrap()
        .map(|r| format!("{r:?}"))
        .collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 3_000);
}

/// Bytes that are mostly lines, sometimes valid, sometimes not.
fn text_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(line(0, "a").into_bytes()),
        Just(line(9, "b").into_bytes()),
        Just(line(3, "c").into_bytes()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"{not json".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

fn options_strategy() -> impl Strategy<Value = ReadOptions> {
    (any::<bool>(), prop_oneof![Just(64 << 20), 0usize..200]).prop_map(|(skip, max)| ReadOptions {
        skip_bad_lines: skip,
        max_line_bytes: max,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn both_readers_agree_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        opts in options_strategy(),
    ) {
        both_bytes(&bytes, opts);
        // With the gzip magic in front, the bytes go to the decoder.
        let mut gz = vec![0x1f, 0x8b];
        gz.extend_from_slice(&bytes);
        both_bytes(&gz, opts);
    }

    #[test]
    fn both_readers_agree_on_line_shaped_input(
        text in text_strategy(),
        opts in options_strategy(),
        cut in any::<proptest::sample::Index>(),
    ) {
        both_bytes(&text, opts);
        let gz = gzip(&text);
        both_bytes(&gz, opts);
        both_bytes(&gz[..cut.index(gz.len() + 1)], opts);
    }
}

#[test]
fn a_read_ended_by_an_error_stops_its_thread_while_the_reader_lives() {
    let dropped = Arc::new(AtomicBool::new(false));
    let source = Endless {
        line: b"{not json\n".to_vec(),
        pos: 0,
        reads: Arc::new(AtomicUsize::new(0)),
        dropped: dropped.clone(),
    };
    let mut reader =
        Reader::<Exchange>::from_reader("endless.jsonl", source, ReadOptions::default()).unwrap();
    assert!(reader.next().unwrap().is_err());
    assert!(reader.next().is_none());
    let start = Instant::now();
    while !dropped.load(Ordering::SeqCst) {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(reader.line(), 1);
}

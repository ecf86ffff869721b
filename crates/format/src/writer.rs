//! [`Writer`]: writes records as JSON Lines, gzip-compressed when the file name ends in `.gz`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;

use crate::FormatError;

/// Appends the JSON encoding of `record` and a newline to `buf`.
pub fn encode_line<T: Serialize>(record: &T, buf: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *buf, record)?;
    buf.push(b'\n');
    Ok(())
}

enum Sink {
    Plain(BufWriter<Box<dyn Write + Send>>),
    // Boxed: the encoder's state is large and a writer is created once per file.
    Gzip(Box<GzEncoder<BufWriter<Box<dyn Write + Send>>>>),
}

/// Writes records of type `T`, one per line. Call [`Writer::finish`] to flush and close; a
/// writer dropped without it may leave a truncated gzip stream.
pub struct Writer<T> {
    path: String,
    sink: Sink,
    buf: Vec<u8>,
    lines: u64,
    _record: PhantomData<fn(&T)>,
}

impl<T: Serialize> Writer<T> {
    /// Creates (or truncates) `path`; gzip at the default level when it ends in `.gz`.
    pub fn create(path: &Path) -> Result<Self, FormatError> {
        let gzip = path.extension().is_some_and(|e| e == "gz");
        Self::create_with_level(path, gzip.then_some(6))
    }

    /// Creates (or truncates) `path` with an explicit gzip level (0–9), or plain with `None`.
    pub fn create_with_level(path: &Path, gzip_level: Option<u32>) -> Result<Self, FormatError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|e| FormatError::new(&name, None, e))?;
        Ok(Self::from_writer(name, file, gzip_level))
    }

    /// Wraps any byte sink; `name` appears in errors.
    pub fn from_writer(
        name: impl Into<String>,
        out: impl Write + Send + 'static,
        gzip_level: Option<u32>,
    ) -> Self {
        let out: Box<dyn Write + Send> = Box::new(out);
        let buffered = BufWriter::with_capacity(256 << 10, out);
        let sink = match gzip_level {
            Some(level) => Sink::Gzip(Box::new(GzEncoder::new(
                buffered,
                Compression::new(level.min(9)),
            ))),
            None => Sink::Plain(buffered),
        };
        Writer {
            path: name.into(),
            sink,
            buf: Vec::with_capacity(4096),
            lines: 0,
            _record: PhantomData,
        }
    }

    /// Writes one record as one line.
    pub fn write(&mut self, record: &T) -> Result<(), FormatError> {
        self.buf.clear();
        encode_line(record, &mut self.buf).map_err(|e| {
            FormatError::new(
                &self.path,
                Some(self.lines + 1),
                crate::FormatErrorKind::Parse(e.to_string()),
            )
        })?;
        let line = self.lines + 1;
        let path = &self.path;
        let res = match &mut self.sink {
            Sink::Plain(w) => w.write_all(&self.buf),
            Sink::Gzip(w) => w.write_all(&self.buf),
        };
        res.map_err(|e| FormatError::new(path, Some(line), e))?;
        self.lines = line;
        Ok(())
    }

    /// Number of records written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes everything and closes the gzip stream.
    pub fn finish(self) -> Result<(), FormatError> {
        let path = self.path;
        let res = match self.sink {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(w) => w.finish().and_then(|mut b| b.flush()),
        };
        res.map_err(|e| FormatError::new(&path, None, e))
    }
}

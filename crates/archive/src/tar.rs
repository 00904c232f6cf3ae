//! A small ustar writer: what the snapshot archive and `debug`'s bundle need (directories and
//! regular files with a mode and a modification time), nothing more. Names longer than 100
//! bytes are split over ustar's 155-byte prefix field at a `/`; longer ones are refused.

use std::io::{self, Write};

/// What a header describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    File { size: u64 },
    Dir,
}

fn octal_into(field: &mut [u8], v: u64) -> io::Result<()> {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    if s.len() > digits {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "value too large for a tar header",
        ));
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// One 512-byte ustar header.
pub fn header(name: &str, entry: Entry, mode: u32, mtime: u64) -> io::Result<[u8; 512]> {
    let mut h = [0u8; 512];
    let bytes = name.as_bytes();
    if bytes.len() <= 100 {
        h[..bytes.len()].copy_from_slice(bytes);
    } else {
        // prefix "/" name, the name part at most 100 bytes and the prefix at most 155.
        let split = bytes
            .iter()
            .enumerate()
            .filter(|(i, b)| **b == b'/' && *i <= 155 && bytes.len() - i - 1 <= 100)
            .map(|(i, _)| i)
            .next_back()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("name too long for a tar header: {name}"),
                )
            })?;
        h[..bytes.len() - split - 1].copy_from_slice(&bytes[split + 1..]);
        h[345..345 + split].copy_from_slice(&bytes[..split]);
    }
    octal_into(&mut h[100..108], u64::from(mode & 0o7777))?;
    octal_into(&mut h[108..116], 0)?;
    octal_into(&mut h[116..124], 0)?;
    let (size, flag) = match entry {
        Entry::File { size } => (size, b'0'),
        Entry::Dir => (0, b'5'),
    };
    let mut size_field = [0u8; 12];
    octal_into(&mut size_field, size)?;
    h[124..136].copy_from_slice(&size_field);
    let mut mtime_field = [0u8; 12];
    octal_into(&mut mtime_field, mtime)?;
    h[136..148].copy_from_slice(&mtime_field);
    h[156] = flag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    Ok(h)
}

/// Writes entries one after another, then the two zero blocks that end an archive.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        TarWriter { out }
    }

    pub fn dir(&mut self, name: &str, mode: u32, mtime: u64) -> io::Result<()> {
        self.out.write_all(&header(name, Entry::Dir, mode, mtime)?)
    }

    /// A regular file of exactly `size` bytes read from `data`.
    pub fn file(
        &mut self,
        name: &str,
        mode: u32,
        mtime: u64,
        size: u64,
        data: &mut impl io::Read,
    ) -> io::Result<()> {
        self.out
            .write_all(&header(name, Entry::File { size }, mode, mtime)?)?;
        let copied = io::copy(&mut io::Read::take(&mut *data, size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} shrank while being archived"),
            ));
        }
        let pad = (512 - size % 512) % 512;
        self.out.write_all(&vec![0u8; pad as usize])
    }

    /// End the archive and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 1024])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_reads_back_what_was_written() {
        let mut t = TarWriter::new(Vec::new());
        t.dir("bundle", 0o755, 1_700_000_000).unwrap();
        t.file("bundle/a.json", 0o644, 1_700_000_000, 2, &mut &b"{}"[..])
            .unwrap();
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        t.file(&long, 0o644, 0, 3, &mut &b"abc"[..]).unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(bytes.len(), 512 * 5 + 1024);
        assert_eq!(&bytes[..6], b"bundle");
        assert_eq!(bytes[156], b'5');
        assert_eq!(&bytes[512..525], b"bundle/a.json");
        assert_eq!(&bytes[1024..1026], b"{}");
        // The long name: its directory in the prefix field.
        assert_eq!(&bytes[1536..1536 + 90], "f".repeat(90).as_bytes());
        assert_eq!(
            &bytes[1536 + 345..1536 + 345 + 120],
            "d".repeat(120).as_bytes()
        );
        assert!(header(&"x".repeat(300), Entry::Dir, 0, 0).is_err());
    }
}

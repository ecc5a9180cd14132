//! The zip side of `torch.save` archives, over the `zip` crate (central directory, zip64 records,
//! local headers). Torch writes every member stored (uncompressed, 64-byte aligned), so a stored
//! member is only located: its bytes stay in the caller's buffer and are never copied. Deflated
//! members (archives re-packed by other tools) are inflated into memory with their CRC checked;
//! CRCs of stored members are not verified, as before, since that would read every weight byte
//! at open time. Other methods and encrypted members are refused, naming the member.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::ops::Range;
use std::rc::Rc;

use zip::{CompressionMethod, ZipArchive};

/// Deflate cannot expand data more than ~1032 times; a capacity hint above that is a lie.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// All the deflated members of one archive together may inflate to at most this many times the
/// archive's size (but always to [`INFLATE_FLOOR`]): generous for checkpoints (float weights
/// deflate by ~1.1x, all-zero buffers far more but they are small), and it bounds the memory a
/// zip bomb can claim, including many directory entries pointing at the same deflated bytes.
pub(crate) const INFLATE_RATIO: u64 = 128;
/// The inflate budget of small archives.
pub(crate) const INFLATE_FLOOR: u64 = 64 << 20;

/// Reading the directory may read at most this many times the file's size (plus
/// [`SEARCH_SLACK`]). A valid archive needs about one times (the directory, and the end records
/// at the very end), but when an end-of-directory record fails to check out the zip crate tries
/// every earlier `PK\x05\x06` in the file, each try scanning forward for the directory: a 4 MB
/// file made of such records kept it busy for 43 s before this bound.
const SEARCH_RATIO: u64 = 2;
const SEARCH_SLACK: u64 = 1 << 20;

/// The bytes that reads may still take; `u64::MAX` once the directory is read.
#[derive(Debug, Default)]
struct ReadBudget {
    left: Cell<u64>,
    exhausted: Cell<bool>,
}

/// A cursor over the file whose reads are charged to a [`ReadBudget`].
struct Budgeted<'a> {
    cursor: Cursor<&'a [u8]>,
    budget: Rc<ReadBudget>,
}

impl Read for Budgeted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.cursor.read(buf)?;
        let left = self.budget.left.get();
        if n as u64 > left {
            self.budget.exhausted.set(true);
            // Not `UnexpectedEof`: the zip crate takes that for the end of the file and goes on.
            return Err(io::Error::other("read budget for the zip directory spent"));
        }
        self.budget.left.set(left - n as u64);
        Ok(n)
    }
}

impl Seek for Budgeted<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.cursor.seek(to)
    }
}

/// A member's bytes (legacy checkpoints' storages too, always `Stored`).
#[derive(Debug)]
pub(crate) enum Member {
    /// Stored: this range of the file's bytes.
    Stored(Range<usize>),
    /// Deflated, inflated here.
    Inflated(Vec<u8>),
}

impl Member {
    /// The length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Member::Stored(range) => range.len(),
            Member::Inflated(data) => data.len(),
        }
    }

    /// The member's bytes, given the archive's.
    pub fn bytes<'a>(&'a self, archive: &'a [u8]) -> Option<&'a [u8]> {
        match self {
            Member::Stored(range) => archive.get(range.clone()),
            Member::Inflated(data) => Some(data),
        }
    }
}

/// An archive's directory over borrowed bytes.
pub(crate) struct Archive<'a> {
    len: usize,
    zip: ZipArchive<Budgeted<'a>>,
    /// Bytes inflated so far, and the most allowed (see [`INFLATE_RATIO`]).
    inflated: u64,
    budget: u64,
    /// The file span (local header to end of data) of every member read so far, by start, with
    /// its name: members must not overlap. torch never writes overlapping members; overlap is
    /// how zip bombs reuse one run of deflated bytes for many members, and how a crafted file
    /// makes a storage alias the pickle.
    spans: BTreeMap<u64, (u64, String)>,
}

impl<'a> Archive<'a> {
    /// Reads the central directory of the zip in `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let len = bytes.len() as u64;
        let search = len
            .saturating_mul(SEARCH_RATIO)
            .saturating_add(SEARCH_SLACK);
        let budget = Rc::new(ReadBudget::default());
        budget.left.set(search);
        let reader = Budgeted {
            cursor: Cursor::new(bytes),
            budget: budget.clone(),
        };
        let zip = ZipArchive::new(reader).map_err(|e| {
            if budget.exhausted.get() {
                format!(
                    "no consistent central directory found after reading {search} bytes \
                     ({SEARCH_RATIO} x the file): many broken end-of-directory records"
                )
            } else {
                e.to_string()
            }
        })?;
        // Member reads are bounded by the archive's size (stored) or the inflate budget.
        budget.left.set(u64::MAX);
        Ok(Archive {
            len: bytes.len(),
            zip,
            inflated: 0,
            budget: (bytes.len() as u64)
                .saturating_mul(INFLATE_RATIO)
                .max(INFLATE_FLOOR),
            spans: BTreeMap::new(),
        })
    }

    /// Member names in directory order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.zip.file_names()
    }

    /// Locates (stored) or inflates (deflated) the member `name`.
    pub fn member(&mut self, name: &str) -> Result<Member, String> {
        let index = self
            .zip
            .index_for_name(name)
            .ok_or_else(|| format!("member {name} is not in the archive"))?;
        let at = |e: &dyn std::fmt::Display| format!("member {name}: {e}");
        // The raw reader parses the local header (for the data offset) and reads nothing else.
        let raw = self.zip.by_index_raw(index).map_err(|e| at(&e))?;
        if raw.encrypted() {
            return Err(format!("member {name} is encrypted"));
        }
        let (method, packed, size) = (raw.compression(), raw.compressed_size(), raw.size());
        let start = raw
            .data_start()
            .ok_or_else(|| at(&"local header not read"))?;
        let header = raw.header_start().min(start);
        drop(raw);
        let end = start.checked_add(packed).filter(|&e| e <= self.len as u64);
        let Some(end) = end else {
            return Err(at(&format_args!(
                "{packed} bytes at offset {start} lie past the end ({} bytes)",
                self.len
            )));
        };
        self.claim(name, header, end)?;
        match method {
            // Both fit in usize: `end` is within the slice.
            CompressionMethod::Stored => Ok(Member::Stored(start as usize..end as usize)),
            CompressionMethod::Deflated => self
                .inflate(name, index, packed, size)
                .map(Member::Inflated),
            other => Err(format!(
                "member {name} is compressed with {}; only stored (as torch.save writes) and \
                 deflated members can be read",
                method_name(other)
            )),
        }
    }

    /// Records that member `name` spans `start..end` of the file, refusing a span that overlaps
    /// a member read before (a member read twice is the same span, and allowed).
    fn claim(&mut self, name: &str, start: u64, end: u64) -> Result<(), String> {
        let before = self.spans.range(..=start).next_back();
        let after = self.spans.range(start..).next();
        for (&s, (e, other)) in before.into_iter().chain(after) {
            let same = s == start && *e == end && other == name;
            if !same && s < end.max(start + 1) && start < *e {
                return Err(format!(
                    "member {name} (bytes {start}..{end}) overlaps member {other} (bytes \
                     {s}..{e}): members of a checkpoint never share bytes"
                ));
            }
        }
        self.spans.insert(start, (end, name.to_string()));
        Ok(())
    }

    /// Inflates a deflated member of `packed` bytes that declares `size` bytes, within the budget.
    fn inflate(
        &mut self,
        name: &str,
        index: usize,
        packed: u64,
        size: u64,
    ) -> Result<Vec<u8>, String> {
        let left = self.budget - self.inflated;
        if size > left {
            return Err(format!(
                "member {name} would inflate to {size} bytes, past the {} bytes allowed for this \
                 archive's deflated members ({INFLATE_RATIO} x its size, at least {} MiB, {} \
                 already used): a zip bomb or a corrupt size",
                self.budget,
                INFLATE_FLOOR >> 20,
                self.inflated
            ));
        }
        // The declared size is a hint only; never reserve more than the deflated bytes can yield.
        let hint = size.min(packed.saturating_mul(DEFLATE_MAX_RATIO));
        let mut out = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        let reader = self
            .zip
            .by_index(index)
            .map_err(|e| format!("member {name}: {e}"))?;
        // One byte past the declared size tells a stream that runs on; reading to the end of the
        // stream is what makes the zip crate check the CRC.
        reader
            .take(size + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("member {name}: cannot inflate: {e}"))?;
        if out.len() as u64 != size {
            let what = if out.len() as u64 > size {
                "more"
            } else {
                "fewer"
            };
            return Err(format!(
                "member {name} inflates to {what} bytes than the {size} its header declares"
            ));
        }
        self.inflated += size;
        Ok(out)
    }
}

/// Names a compression method; without the zip crate's other codecs compiled in, they all read
/// `Unsupported(n)`.
fn method_name(method: CompressionMethod) -> String {
    #[allow(deprecated)] // the variant is how the zip crate reports methods it was built without
    if let CompressionMethod::Unsupported(n) = method {
        let known = match n {
            1..=6 => "a legacy PKWARE method",
            9 => "deflate64",
            12 => "bzip2",
            14 => "lzma",
            93 => "zstd",
            95 => "xz",
            98 => "ppmd",
            99 => "AES encryption",
            _ => "unknown",
        };
        return format!("method {n} ({known})");
    }
    method.to_string()
}

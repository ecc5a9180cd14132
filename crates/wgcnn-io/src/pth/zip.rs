//! Just enough of the zip format to read `torch.save` archives: the central directory (with
//! zip64 extensions, which torch writes for large files) and stored (uncompressed) entries.
//! Compressed or encrypted entries are listed but refused when read. CRCs are not verified.

use std::ops::Range;

/// One file of the archive.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    /// Compression method (0 = stored).
    method: u16,
    encrypted: bool,
    size: u64,
    local_header: u64,
}

/// The archive's directory over borrowed bytes.
#[derive(Debug)]
pub(crate) struct Archive {
    pub entries: Vec<Entry>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

fn slice(bytes: &[u8], at: u64, len: usize) -> Result<&[u8], String> {
    usize::try_from(at)
        .ok()
        .and_then(|a| Some(a..a.checked_add(len)?))
        .and_then(|r| bytes.get(r))
        .ok_or_else(|| {
            format!(
                "{len} bytes at offset {at} lie past the end ({} bytes)",
                bytes.len()
            )
        })
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes([
        b[i],
        b[i + 1],
        b[i + 2],
        b[i + 3],
        b[i + 4],
        b[i + 5],
        b[i + 6],
        b[i + 7],
    ])
}

impl Archive {
    /// Reads the central directory of the zip in `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Archive, String> {
        let eocd = find_eocd(bytes).ok_or("no end-of-central-directory record (truncated?)")?;
        let rec = slice(bytes, eocd as u64, 22)?;
        let mut count = u16_at(rec, 10) as u64;
        let mut cd_size = u32_at(rec, 12) as u64;
        let mut cd_offset = u32_at(rec, 16) as u64;
        if count == 0xffff || cd_size == 0xffff_ffff || cd_offset == 0xffff_ffff {
            let locator = eocd.checked_sub(20).ok_or("zip64 locator missing")?;
            let loc = slice(bytes, locator as u64, 20)?;
            if u32_at(loc, 0) != ZIP64_LOCATOR_SIG {
                return Err("zip64 locator missing".into());
            }
            let z = slice(bytes, u64_at(loc, 8), 56)?;
            if u32_at(z, 0) != ZIP64_EOCD_SIG {
                return Err("bad zip64 end-of-central-directory signature".into());
            }
            count = u64_at(z, 32);
            cd_size = u64_at(z, 40);
            cd_offset = u64_at(z, 48);
        }
        let cd_len = usize::try_from(cd_size).map_err(|_| "central directory too large")?;
        let cd = slice(bytes, cd_offset, cd_len)?;
        // Each record takes at least 46 bytes: a count beyond that is corrupt.
        if count > (cd.len() / 46) as u64 {
            return Err(format!(
                "{count} entries cannot fit a {cd_len}-byte central directory"
            ));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut at = 0usize;
        for _ in 0..count {
            let head = cd.get(at..at + 46).ok_or("central directory truncated")?;
            if u32_at(head, 0) != CENTRAL_SIG {
                return Err(format!(
                    "bad central directory signature at entry {}",
                    entries.len()
                ));
            }
            let flags = u16_at(head, 8);
            let method = u16_at(head, 10);
            let mut size = u32_at(head, 20) as u64; // compressed size
            let raw_size = u32_at(head, 24);
            let name_len = u16_at(head, 28) as usize;
            let extra_len = u16_at(head, 30) as usize;
            let comment_len = u16_at(head, 32) as usize;
            let mut local_header = u32_at(head, 42) as u64;
            let name_end = at + 46 + name_len;
            let name = cd
                .get(at + 46..name_end)
                .ok_or("central directory truncated")?;
            let extra = cd
                .get(name_end..name_end + extra_len)
                .ok_or("central directory truncated")?;
            let name = String::from_utf8_lossy(name).into_owned();
            // zip64 extra field: the 64-bit values of the fields that read 0xffffffff, in order.
            let mut e = 0;
            while e + 4 <= extra.len() {
                let id = u16_at(extra, e);
                let len = u16_at(extra, e + 2) as usize;
                let body = extra.get(e + 4..e + 4 + len).ok_or("bad extra field")?;
                if id == 0x0001 {
                    let mut fields = body.chunks_exact(8).map(|c| u64_at(c, 0));
                    if raw_size == 0xffff_ffff {
                        fields.next();
                    }
                    if size == 0xffff_ffff {
                        size = fields.next().ok_or("zip64 field missing")?;
                    }
                    if local_header == 0xffff_ffff {
                        local_header = fields.next().ok_or("zip64 field missing")?;
                    }
                }
                e += 4 + len;
            }
            entries.push(Entry {
                name,
                method,
                encrypted: flags & 1 != 0,
                size,
                local_header,
            });
            at = name_end + extra_len + comment_len;
        }
        Ok(Archive { entries })
    }

    /// The entry named `name`.
    pub fn find(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

impl Entry {
    /// The byte range of the entry's data in the archive.
    pub fn data_range(&self, bytes: &[u8]) -> Result<Range<usize>, String> {
        if self.encrypted {
            return Err(format!("entry {} is encrypted", self.name));
        }
        if self.method != 0 {
            let what = if self.method == 8 { " (deflate)" } else { "" };
            return Err(format!(
                "entry {} is compressed with method {}{what}; torch.save stores entries uncompressed, \
                 re-save the checkpoint with torch.save",
                self.name, self.method
            ));
        }
        let local = slice(bytes, self.local_header, 30)?;
        if u32_at(local, 0) != LOCAL_SIG {
            return Err(format!(
                "bad local header signature for entry {}",
                self.name
            ));
        }
        let skip = 30 + u16_at(local, 26) as u64 + u16_at(local, 28) as u64;
        let start = self.local_header + skip;
        let len =
            usize::try_from(self.size).map_err(|_| format!("entry {} too large", self.name))?;
        slice(bytes, start, len)?;
        let start = start as usize; // checked by `slice`
        Ok(start..start + len)
    }
}

/// The end-of-central-directory record: 22 bytes plus a comment of up to 64 KiB at the end.
fn find_eocd(bytes: &[u8]) -> Option<usize> {
    let last = bytes.len().checked_sub(22)?;
    let first = last.saturating_sub(0xffff);
    (first..=last).rev().find(|&i| u32_at(bytes, i) == EOCD_SIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip64_end_records_are_followed_when_the_classic_fields_overflow() {
        // torch writes zip64 end records into every archive; mark the classic record's count and
        // offset as overflowed (as in files over 4 GiB) so the reader must take the zip64 path.
        let path = crate::fixture_path("pth/lenet5.pth");
        let good = std::fs::read(&path).unwrap();
        let want = Archive::parse(&good).unwrap();
        let mut bytes = good.clone();
        let eocd = find_eocd(&bytes).unwrap();
        bytes[eocd + 8..eocd + 12].copy_from_slice(&[0xff; 4]);
        bytes[eocd + 16..eocd + 20].copy_from_slice(&[0xff; 4]);
        let got = Archive::parse(&bytes).unwrap();
        let names = |a: &Archive| a.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        println!("{} entries via zip64 records", got.entries.len());
        assert_eq!(names(&got), names(&want));
        let pkl = got.find("lenet5/data.pkl").unwrap();
        assert_eq!(&bytes[pkl.data_range(&bytes).unwrap()][..2], &[0x80, 0x02]);
    }
}

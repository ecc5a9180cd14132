//! COCO's compressed run-length encoding of binary masks, exactly as `pycocotools.mask.encode`
//! writes it (`maskApi.c`: `rleEncode` + `rleToString`) and `decode` reads it, so COCO tools
//! read our masks.
//!
//! Runs go down the columns (column-major, Fortran order), alternating background and
//! foreground and starting with background (the first run may be empty). Each run length, less
//! the run two before it from the fourth run on, is written LEB128-like in 5-bit groups (low
//! first, sign-extended from bit 4) as ASCII `48 + group`, `+ 32` on every group but the last.

/// A compressed RLE: `{"size": [height, width], "counts": "..."}` in COCO's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CocoRle {
    /// `[height, width]`.
    pub size: [usize; 2],
    pub counts: String,
}

/// Why a compressed RLE string does not decode to a mask of its size.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RleError {
    #[error("byte {byte:#04x} at {at} is outside COCO's RLE alphabet (48..=111)")]
    BadByte { byte: u8, at: usize },
    #[error("the counts end inside a run length")]
    Truncated,
    #[error("run {index} has a negative or oversized length")]
    BadRun { index: usize },
    #[error("the runs cover {covered} pixels; a {height}x{width} mask has {}", .height * .width)]
    WrongTotal {
        covered: u64,
        height: usize,
        width: usize,
    },
}

impl CocoRle {
    /// Encodes a row-major `height` x `width` mask (`mask[y * width + x]`, nonzero = set).
    /// `mask` shorter than `height * width` reads as unset past its end.
    pub fn encode(mask: &[u8], height: usize, width: usize) -> CocoRle {
        let mut runs: Vec<u64> = Vec::new();
        let (mut value, mut run) = (false, 0u64);
        for x in 0..width {
            for y in 0..height {
                let set = mask.get(y * width + x).is_some_and(|&v| v != 0);
                if set != value {
                    runs.push(run);
                    run = 0;
                    value = set;
                }
                run += 1;
            }
        }
        runs.push(run);
        let mut counts = String::new();
        for (i, &r) in runs.iter().enumerate() {
            let mut x = r as i64;
            if i > 2 {
                x -= runs[i - 2] as i64;
            }
            loop {
                let mut c = (x & 0x1f) as u8;
                x >>= 5;
                let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
                if more {
                    c |= 0x20;
                }
                counts.push(char::from(c + 48));
                if !more {
                    break;
                }
            }
        }
        CocoRle {
            size: [height, width],
            counts,
        }
    }

    /// The run lengths (background first) that `counts` encodes.
    pub fn runs(&self) -> Result<Vec<u64>, RleError> {
        let bytes = self.counts.as_bytes();
        let mut runs: Vec<u64> = Vec::new();
        let mut p = 0;
        while p < bytes.len() {
            let (mut x, mut k) = (0i64, 0u32);
            loop {
                let byte = *bytes.get(p).ok_or(RleError::Truncated)?;
                if !(48..=111).contains(&byte) {
                    return Err(RleError::BadByte { byte, at: p });
                }
                // More than 12 groups (60 bits) cannot be a run of any real mask.
                if k >= 12 {
                    return Err(RleError::BadRun { index: runs.len() });
                }
                let c = (byte - 48) as i64;
                x |= (c & 0x1f) << (5 * k);
                p += 1;
                k += 1;
                if c & 0x20 == 0 {
                    if c & 0x10 != 0 {
                        x |= -1i64 << (5 * k);
                    }
                    break;
                }
            }
            let index = runs.len();
            if index > 2 {
                x = x
                    .checked_add(runs[index - 2] as i64)
                    .ok_or(RleError::BadRun { index })?;
            }
            runs.push(u64::try_from(x).map_err(|_| RleError::BadRun { index })?);
        }
        Ok(runs)
    }

    /// The row-major mask (1 = set) this RLE encodes.
    pub fn decode(&self) -> Result<Vec<u8>, RleError> {
        let [height, width] = self.size;
        let total = height as u64 * width as u64;
        let runs = self.runs()?;
        let covered = runs
            .iter()
            .try_fold(0u64, |a, &r| a.checked_add(r))
            .unwrap_or(u64::MAX);
        if covered != total {
            return Err(RleError::WrongTotal {
                covered,
                height,
                width,
            });
        }
        let mut mask = vec![0u8; height * width];
        let mut i = 0usize;
        for (k, &r) in runs.iter().enumerate() {
            for j in i..i + r as usize {
                if k % 2 == 1 {
                    // Column-major position j: column j / height, row j % height.
                    mask[(j % height) * width + j / height] = 1;
                }
            }
            i += r as usize;
        }
        Ok(mask)
    }

    /// Set pixels (`pycocotools.mask.area`).
    pub fn area(&self) -> Result<u64, RleError> {
        Ok(self.runs()?.iter().skip(1).step_by(2).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_pycocotools_test_vector() {
        // 5x7: rows 1..=3 x columns 2..=5 set, and (row 0, column 6).
        let (h, w) = (5, 7);
        let mut mask = vec![0u8; h * w];
        for y in 1..=3 {
            for x in 2..=5 {
                mask[y * w + x] = 1;
            }
        }
        mask[6] = 1;
        let rle = CocoRle::encode(&mask, h, w);
        assert_eq!(rle.size, [5, 7]);
        assert_eq!(rle.counts, ";3200000ON3");
        assert_eq!(rle.runs(), Ok(vec![11, 3, 2, 3, 2, 3, 2, 3, 1, 1, 4]));
        assert_eq!(rle.area(), Ok(13));
        assert_eq!(rle.decode(), Ok(mask));
    }

    #[test]
    fn empty_full_and_single_pixel_masks_round_trip() {
        for (h, w) in [(1, 1), (3, 4), (1, 9), (9, 1), (0, 5)] {
            let n = h * w;
            let empty = vec![0u8; n];
            let full = vec![1u8; n];
            for mask in [empty, full] {
                let rle = CocoRle::encode(&mask, h, w);
                assert_eq!(rle.decode().as_ref(), Ok(&mask), "{h}x{w} {:?}", rle.counts);
            }
            if n > 0 {
                let mut last = vec![0u8; n];
                last[n - 1] = 1;
                let rle = CocoRle::encode(&last, h, w);
                assert_eq!(rle.decode(), Ok(last));
            }
        }
        // A full mask starts with an empty background run.
        assert_eq!(CocoRle::encode(&[1, 1, 1, 1], 2, 2).runs(), Ok(vec![0, 4]));
    }

    #[test]
    fn random_masks_round_trip_with_long_and_short_runs() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for case in 0..200 {
            let (h, w) = (1 + (next() % 70) as usize, 1 + (next() % 90) as usize);
            // Blobby masks (long runs, large deltas of both signs) and salt-and-pepper ones.
            let density = next() % 100;
            let mut mask = vec![0u8; h * w];
            let mut on = false;
            for v in mask.iter_mut() {
                if next() % 100 < if case % 2 == 0 { 3 } else { density } {
                    on = !on;
                }
                *v = on as u8;
            }
            let rle = CocoRle::encode(&mask, h, w);
            assert!(rle.counts.bytes().all(|b| (48..=111).contains(&b)));
            assert_eq!(rle.decode().as_ref(), Ok(&mask), "case {case} {h}x{w}");
            let area = mask.iter().map(|&v| v as u64).sum::<u64>();
            assert_eq!(rle.area(), Ok(area));
        }
    }

    #[test]
    fn malformed_counts_are_errors_not_panics() {
        let rle = |counts: &str, size: [usize; 2]| CocoRle {
            size,
            counts: counts.to_string(),
        };
        assert_eq!(
            rle(";3200000ON3", [5, 6]).decode(),
            Err(RleError::WrongTotal {
                covered: 35,
                height: 5,
                width: 6
            })
        );
        assert!(matches!(
            rle(";3 2", [5, 7]).decode(),
            Err(RleError::BadByte { byte: b' ', at: 2 })
        ));
        // `P` (32) has its continuation bit set: the string ends inside a run.
        assert_eq!(rle(";3P", [5, 7]).decode(), Err(RleError::Truncated));
        // A first run of -1.
        assert!(matches!(
            rle("O", [1, 1]).decode(),
            Err(RleError::BadRun { index: 0 })
        ));
        assert!(matches!(
            rle(&"o".repeat(40), [1, 1]).decode(),
            Err(RleError::BadRun { .. })
        ));
    }
}

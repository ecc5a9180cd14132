use std::fs;

use super::torch_writer::{Pickler, torch_legacy, torch_zip, write_zip};
use super::*;
use crate::fixture_path;
use crate::rule::rule_tensor;

const LENET5_KEYS: [&str; 10] = [
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
    "fc3.weight",
    "fc3.bias",
];

/// Largest `|got - rule|` over every tensor, checking that every tensor is the rule's.
fn max_rule_error(file: &PthFile) -> f32 {
    let mut worst = 0f32;
    for key in file.keys() {
        let t = file.tensor(key).unwrap();
        let want =
            rule_tensor(key, &t.shape).unwrap_or_else(|| panic!("{key}: the rule leaves it alone"));
        for (g, w) in t.data.iter().zip(&want) {
            worst = worst.max((g - w).abs());
        }
    }
    worst
}

#[test]
fn pth_lenet5_zip_state_dict_has_lenet_keys_and_rule_values() {
    let file = PthFile::open(fixture_path("pth/lenet5.pth")).unwrap();
    assert!(!file.is_legacy());
    assert_eq!(file.keys(), LENET5_KEYS);
    assert_eq!(file.shape("conv1.weight"), Some(&[6usize, 1, 5, 5][..]));
    assert_eq!(file.shape("fc1.weight"), Some(&[120usize, 400][..]));
    assert_eq!(file.dtype("fc3.bias"), Some(DType::F32));
    let err = max_rule_error(&file);
    println!("lenet5.pth: max |value - rule| = {err:e}");
    assert_eq!(err, 0.0, "f32 checkpoints hold the rule's values exactly");
}

#[test]
fn pth_lenet5_nested_under_model_key() {
    let file = PthFile::open(fixture_path("pth/lenet5.nested.pth")).unwrap();
    assert_eq!(file.keys(), LENET5_KEYS);
    let err = max_rule_error(&file);
    println!("lenet5.nested.pth: max |value - rule| = {err:e}");
    assert_eq!(err, 0.0);
}

#[test]
fn pth_lenet5_f16_within_half_rounding() {
    let file = PthFile::open(fixture_path("pth/lenet5.f16.pth")).unwrap();
    assert_eq!(file.keys(), LENET5_KEYS);
    assert_eq!(file.dtype("conv1.weight"), Some(DType::F16));
    let mut worst_rel = 0f32;
    for key in file.keys() {
        let t = file.tensor(key).unwrap();
        let want = rule_tensor(key, &t.shape).unwrap();
        for (g, w) in t.data.iter().zip(&want) {
            // Round to nearest f16: relative error at most 2^-11 (normals), 2^-25 absolute below.
            let bound = w.abs() * (1.0 / 2048.0) + 3e-8;
            assert!((g - w).abs() <= bound, "{key}: {g} vs {w}");
            if w.abs() >= 1.0 / 16384.0 {
                worst_rel = worst_rel.max((g - w).abs() / w.abs()); // f16 normal range
            }
        }
    }
    println!(
        "lenet5.f16.pth: max relative error vs rule over f16 normals = {worst_rel:e} (bound 2^-11 = 4.9e-4)"
    );
}

#[test]
fn pth_lenet5_legacy_format_loads() {
    let file = PthFile::open(fixture_path("pth/lenet5.legacy.pth")).unwrap();
    assert!(file.is_legacy());
    assert_eq!(file.keys(), LENET5_KEYS);
    let err = max_rule_error(&file);
    println!("lenet5.legacy.pth: max |value - rule| = {err:e}");
    assert_eq!(err, 0.0);
}

#[test]
fn pth_squeezenet1_1_matches_rule() {
    let file = PthFile::open(fixture_path("pth/squeezenet1_1.pth")).unwrap();
    assert_eq!(file.keys().len(), 52);
    assert_eq!(file.keys()[0], "features.0.weight");
    assert_eq!(
        file.shape("classifier.1.weight"),
        Some(&[1000usize, 512, 1, 1][..])
    );
    let err = max_rule_error(&file);
    println!(
        "squeezenet1_1.pth: {} tensors, max |value - rule| = {err:e}",
        file.keys().len()
    );
    assert_eq!(err, 0.0);
}

#[test]
fn open_weights_dispatches_on_content() {
    for name in [
        "pth/lenet5.pth",
        "pth/lenet5.legacy.pth",
        "classify/lenet5.full.safetensors",
    ] {
        let source = crate::open_weights(fixture_path(name)).unwrap();
        let keys = source.keys();
        println!("{name}: {} keys", keys.len());
        assert!(!keys.is_empty(), "{name}");
    }
    let path = crate::tests::temp_path("notweights.bin");
    fs::write(&path, b"GIF89a not a checkpoint").unwrap();
    let err = crate::open_weights(&path).map(|_| ()).unwrap_err();
    let _ = fs::remove_file(&path);
    println!("{err}");
    assert!(
        matches!(err, IoError::UnknownFormat { .. }) && err.to_string().contains("notweights.bin")
    );
}

/// Deterministic pseudo-random numbers for the corruption tests.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Opens every corrupted variant; a file that still opens must load every tensor or error.
fn survive(name: &str, good: &[u8], variants: impl Iterator<Item = Vec<u8>>) -> (usize, usize) {
    let (mut rejected, mut opened) = (0, 0);
    for bytes in variants {
        match PthFile::from_bytes(name, bytes) {
            Err(e) => {
                assert!(e.to_string().contains(name), "{e}");
                rejected += 1;
            }
            Ok(file) => {
                opened += 1;
                for key in file.keys() {
                    let _ = file.tensor(key);
                }
            }
        }
    }
    assert!(rejected > 0 && good.len() > 1000);
    (rejected, opened)
}

#[test]
fn pth_truncated_and_bit_flipped_checkpoints_never_panic() {
    for name in ["lenet5.pth", "lenet5.legacy.pth"] {
        let good = fs::read(fixture_path(&format!("pth/{name}"))).unwrap();
        // Every truncation of the pickle and directory regions, a spread elsewhere.
        let n = good.len();
        let cuts = (0..n).filter(|&c| c < 2048 || c + 2048 > n || c % 997 == 0);
        let (rej_t, ok_t) = survive(name, &good, cuts.map(|c| good[..c].to_vec()));
        assert_eq!(ok_t, 0, "{name}: a truncated file must not open");
        let mut seed = 0x5eed_u64;
        let flips = (0..4000).map(|i| {
            let mut bad = good.clone();
            // Half the flips in the first 2 KiB (pickle), half in the last 2 KiB (zip directory).
            let at = if i % 2 == 0 {
                lcg(&mut seed) as usize % 2048.min(n)
            } else {
                n - 1 - lcg(&mut seed) as usize % 2048.min(n)
            };
            bad[at] ^= 1 << (lcg(&mut seed) % 8);
            bad
        });
        let (rej_f, ok_f) = survive(name, &good, flips);
        println!(
            "{name}: truncations {rej_t} rejected; bit flips {rej_f} rejected, {ok_f} still open"
        );
    }
}

/// Pickle text helpers: `X` strings and `c` globals.
fn s(text: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend((text.len() as u32).to_le_bytes());
    v.extend(text.as_bytes());
    v
}

fn rebuild(
    storage_type: &str,
    key: &str,
    numel: u8,
    offset: u8,
    size: &[u8],
    stride: &[u8],
) -> Vec<u8> {
    let mut p = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
    p.extend(s("storage"));
    p.extend(format!("ctorch\n{storage_type}\n").as_bytes());
    p.extend(s(key));
    p.extend(s("cpu"));
    p.extend([b'K', numel, b't', b'Q', b'K', offset, b'(']);
    for &d in size {
        p.extend([b'K', d]);
    }
    p.extend([b't', b'(']);
    for &d in stride {
        p.extend([b'K', d]);
    }
    p.extend([b't', 0x89, b'}', b't', b'R']);
    p
}

#[test]
fn pth_handmade_checkpoint_strided_f64_nested_and_module_prefix() {
    // {"epoch": 1, "state_dict": OrderedDict(module.fc.weight: transposed f32 view,
    //  module.fc.bias: f64 at offset 1)} in a folder named "archive".
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(s("epoch"));
    p.extend([b'K', 1]);
    p.extend(s("state_dict"));
    p.extend(b"ccollections\nOrderedDict\n)R(");
    p.extend(s("module.fc.weight"));
    p.extend(rebuild("FloatStorage", "0", 6, 0, &[2, 3], &[1, 2]));
    p.extend(s("module.fc.bias"));
    p.extend(rebuild("DoubleStorage", "1", 3, 1, &[2], &[1]));
    p.extend(b"uu.");
    let weights: Vec<u8> = (0..6).flat_map(|v| (v as f32).to_le_bytes()).collect();
    let bias: Vec<u8> = [9.0f64, 0.5, -1.25]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let zip = write_zip(&[
        ("archive/data.pkl", &p),
        ("archive/byteorder", b"little"),
        ("archive/data/0", &weights),
        ("archive/data/1", &bias),
    ]);
    let file = PthFile::from_bytes("handmade.pth", zip).unwrap();
    assert_eq!(file.keys(), ["fc.weight", "fc.bias"]);
    let w = file.tensor("fc.weight").unwrap();
    assert_eq!(
        (w.shape.as_slice(), w.data.as_slice()),
        (&[2usize, 3][..], &[0.0f32, 2.0, 4.0, 1.0, 3.0, 5.0][..])
    );
    assert_eq!(file.tensor("fc.bias").unwrap().data, vec![0.5, -1.25]);
    assert_eq!(file.dtype("fc.bias"), Some(DType::F64));
    println!("transposed view gathered: {:?}", w.data);

    // A view reaching past its storage is refused when opening.
    let mut p2 = vec![0x80, 2, b'}', b'('];
    p2.extend(s("w"));
    p2.extend(rebuild("FloatStorage", "0", 6, 2, &[2, 3], &[3, 1]));
    p2.extend(b"u.");
    let zip = write_zip(&[("x/data.pkl", &p2), ("x/data/0", &weights)]);
    let err = PthFile::from_bytes("overrun.pth", zip)
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(
        err.contains("overrun.pth") && err.contains("\"w\""),
        "{err}"
    );
}

#[test]
fn pth_without_state_dict_explains_what_it_found() {
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(s("epoch"));
    p.extend([b'K', 3, b'u', b'.']);
    let zip = write_zip(&[("a/data.pkl", &p)]);
    let err = PthFile::from_bytes("nodict.pth", zip)
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(
        err.contains("\"epoch\"") && err.contains("state_dict"),
        "{err}"
    );
    let model = write_zip(&[("a/data.pkl", b"\x80\x02c__main__\nNet\n)\x81}b.")]);
    let err = PthFile::from_bytes("model.pth", model)
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(
        err.contains("__main__.Net") && err.contains("model.state_dict()"),
        "{err}"
    );
}

#[test]
fn strided_gather_and_extent() {
    let src: Vec<f32> = (0..12).map(|v| v as f32).collect();
    // A [2,2] window of a [3,4] matrix starting at (1,1).
    assert_eq!(
        gather(&src, 5, &[2, 2], &[4, 1]),
        Some(vec![5.0, 6.0, 9.0, 10.0])
    );
    assert_eq!(extent(5, &[2, 2], &[4, 1]), Some(11));
    assert_eq!(extent(3, &[0, 7], &[7, 1]), Some(3));
    assert_eq!(extent(0, &[usize::MAX, 2], &[usize::MAX, 1]), None);
    assert_eq!(gather(&src, 11, &[2], &[1]), None);
    assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
}

/// `files` written by the `zip` crate: every member with `method`, 64-byte aligned as torch writes
/// them; with `zip64`, sizes and offsets in zip64 extra fields too.
fn write_zip_with(files: &[(&str, &[u8])], method: zip::CompressionMethod, zip64: bool) -> Vec<u8> {
    use std::io::Write;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(method)
        .with_alignment(64)
        .large_file(zip64);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(*name, options).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Every member of the zip in `bytes`, in order, with its contents.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            (f.name().to_string(), data)
        })
        .collect()
}

/// The offset of `name`'s central directory record in a zip without comments.
fn central_record(bytes: &[u8], name: &str) -> usize {
    (0..bytes.len() - 46)
        .find(|&i| {
            bytes[i..i + 4] == 0x0201_4b50u32.to_le_bytes()
                && bytes[i + 46..].starts_with(name.as_bytes())
        })
        .unwrap_or_else(|| panic!("no central record for {name}"))
}

#[test]
fn pth_zip64_end_records_are_followed_when_the_classic_fields_overflow() {
    // torch writes zip64 end records into every archive; mark the classic record's count and
    // offset as overflowed (as in files over 4 GiB) so the reader must take the zip64 path.
    let mut bytes = fs::read(fixture_path("pth/lenet5.pth")).unwrap();
    let eocd = (0..bytes.len() - 21)
        .rev()
        .find(|&i| bytes[i..i + 4] == 0x0605_4b50u32.to_le_bytes())
        .unwrap();
    bytes[eocd + 8..eocd + 12].copy_from_slice(&[0xff; 4]);
    bytes[eocd + 16..eocd + 20].copy_from_slice(&[0xff; 4]);
    let file = PthFile::from_bytes("zip64.pth", bytes).unwrap();
    assert_eq!(file.keys(), LENET5_KEYS);
    assert_eq!(max_rule_error(&file), 0.0);
}

#[test]
fn pth_stored_members_are_located_in_the_file_not_copied() {
    let file = PthFile::open(fixture_path("pth/squeezenet1_1.pth")).unwrap();
    let stored = file
        .storages
        .values()
        .filter(|m| matches!(m, Member::Stored(_)))
        .count();
    println!(
        "squeezenet1_1.pth: {stored} of {} storages borrowed from the file",
        file.storages.len()
    );
    assert_eq!(stored, file.storages.len());
}

#[test]
fn pth_deflated_and_realigned_archives_load_the_same_tensors() {
    let good = fs::read(fixture_path("pth/lenet5.pth")).unwrap();
    let members = unzip(&good);
    let members: Vec<(&str, &[u8])> = members.iter().map(|(n, d)| (n.as_str(), &d[..])).collect();
    for method in [
        zip::CompressionMethod::Deflated,
        zip::CompressionMethod::Stored,
    ] {
        let bytes = write_zip_with(&members, method, true);
        let size = bytes.len();
        let file = PthFile::from_bytes("repacked.pth", bytes).unwrap();
        assert_eq!(file.keys(), LENET5_KEYS);
        assert_eq!(max_rule_error(&file), 0.0, "{method:?}");
        let inflated = file
            .storages
            .values()
            .filter(|m| matches!(m, Member::Inflated(_)))
            .count();
        println!(
            "lenet5 repacked {method:?}: {size} bytes (fixture {}), {inflated} storages inflated",
            good.len()
        );
        assert_eq!(inflated > 0, method == zip::CompressionMethod::Deflated);
    }
}

/// A checkpoint `{"w": FloatStorage of 2 elements}` plus an `extra` member, all deflated.
fn deflated_checkpoint(extra: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(s("w"));
    p.extend(rebuild("FloatStorage", "0", 2, 0, &[2], &[1]));
    p.extend(b"u.");
    let w: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write_zip_with(
        &[("a/data.pkl", &p), ("a/data/0", &w), ("a/data/1", extra)],
        zip::CompressionMethod::Deflated,
        // Sizes in the classic fields, where the tests below patch them.
        false,
    )
}

#[test]
fn pth_deflated_members_with_lying_sizes_or_crcs_are_refused_by_name() {
    let good = deflated_checkpoint(&[7; 1000]);
    let file = PthFile::from_bytes("ok.pth", good.clone()).unwrap();
    assert_eq!(file.tensor("w").unwrap().data, vec![1.5, -2.0]);
    let rec = central_record(&good, "a/data/1");
    // (field offset in the central record, new value, what the error must say)
    let cases: [(usize, u32, &str); 4] = [
        (24, 999, "more bytes than the 999"),
        (24, 1001, "fewer bytes than the 1001"),
        // ~4 GiB claimed by a tiny archive: refused before anything is reserved.
        (24, 0xffff_fff0, "zip bomb"),
        (16, 0x1234_5678, "checksum"),
    ];
    for (field, value, want) in cases {
        let mut bad = good.clone();
        bad[rec + field..rec + field + 4].copy_from_slice(&value.to_le_bytes());
        let err = PthFile::from_bytes("liar.pth", bad)
            .unwrap_err()
            .to_string();
        println!("{err}");
        assert!(
            err.contains("liar.pth") && err.contains("a/data/1") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn pth_zip_bomb_stops_at_the_inflate_budget() {
    // 65 MiB of zeros deflate to ~65 KB: past the 64 MiB floor a tiny archive gets.
    let zeros = vec![0u8; (archive::INFLATE_FLOOR + (1 << 20)) as usize];
    let bomb = deflated_checkpoint(&zeros);
    drop(zeros);
    let err = PthFile::from_bytes("bomb.pth", bomb.clone())
        .unwrap_err()
        .to_string();
    println!("{} byte archive: {err}", bomb.len());
    assert!(bomb.len() < 1 << 20);
    assert!(
        err.contains("bomb.pth") && err.contains("a/data/1") && err.contains("zip bomb"),
        "{err}"
    );
}

#[test]
fn pth_unsupported_encrypted_or_overlong_members_are_refused_by_name() {
    let p = b"\x80\x02}q\x00.";
    let good = write_zip(&[("a/data.pkl", p), ("a/data/0", &[0; 64])]);
    let rec = central_record(&good, "a/data/0");
    let cases: [(usize, &[u8], &str); 3] = [
        (10, &12u16.to_le_bytes(), "compressed with"), // bzip2
        (8, &1u16.to_le_bytes(), "encrypted"),
        (20, &0x7fff_0000u32.to_le_bytes(), "past the end"), // stored size beyond the file
    ];
    for (field, value, want) in cases {
        let mut bad = good.clone();
        bad[rec + field..rec + field + value.len()].copy_from_slice(value);
        let err = PthFile::from_bytes("odd.pth", bad).unwrap_err().to_string();
        println!("{err}");
        assert!(
            err.contains("odd.pth") && err.contains("a/data/0") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn pth_file_of_broken_end_records_is_refused_within_the_read_budget() {
    // 2 MB of end-of-directory records, each claiming 65535 entries from offset 0: the zip crate
    // would try every one, scanning the file for a directory each time (quadratic time).
    let mut record = 0x0605_4b50u32.to_le_bytes().to_vec();
    record.extend([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    record.extend([0; 10]);
    let mut bytes = b"PK\x03\x04".to_vec();
    for _ in 0..(2 << 20) / record.len() {
        bytes.extend(&record);
    }
    let start = std::time::Instant::now();
    let err = PthFile::from_bytes("eocds.pth", bytes)
        .unwrap_err()
        .to_string();
    println!("refused in {:?}: {err}", start.elapsed());
    assert!(
        err.contains("eocds.pth") && err.contains("broken end-of-directory records"),
        "{err}"
    );
}

/// meshrcnn's `Checkpoint.to_dict(include_states=True)` as `torch.save` writes it
/// (`shapenet/utils/checkpoint.py`): bookkeeping, then `latest_states`, `latest_states_ts`,
/// `best_states`, `best_states_ts`, each `{"model", "optim", "lr_scheduler"}`. `latest` and
/// `best` hold different weights here so the test sees which one loads; `best_states_ts["model"]`
/// is the best state dict again (meshrcnn's `store_state` stores the state there, not `t`), a
/// shared reference in the pickle.
fn meshrcnn_checkpoint(
    legacy: bool,
    keys: &[&str],
    best: &[Vec<f32>],
    latest: &[Vec<f32>],
) -> Vec<u8> {
    let shape = |v: &Vec<f32>| vec![v.len()];
    let shapes: Vec<Vec<usize>> = best.iter().map(shape).collect();
    let mut p = Pickler::new(legacy);
    p.dict();
    p.str("t").int(12000).str("epoch").int(25);
    p.str("metrics")
        .dict()
        .str("loss")
        .list()
        .float(0.5)
        .float(0.25)
        .appends();
    p.set_items()
        .str("metrics_ts")
        .dict()
        .str("loss")
        .list()
        .int(20)
        .int(40);
    p.appends().set_items();
    p.str("data")
        .dict()
        .str("iter_per_epoch")
        .int(480)
        .set_items();
    p.str("early_stop_metric").str("val_F1@0.300000");
    p.str("with_model_path")
        .str("output/checkpoint_with_model.pt");
    p.str("no_model_path").str("output/checkpoint_no_model.pt");
    p.str("restarts").list().appends();
    let mut best_slot = 0;
    for (name, values) in [("latest_states", latest), ("best_states", best)] {
        p.str(name).dict().str("model");
        let tensors = keys.iter().zip(&shapes).zip(values);
        let slot = p.state_dict(tensors.map(|((k, s), v)| (*k, &s[..], &v[..])));
        if name == "best_states" {
            best_slot = slot;
        }
        // SGD's state dict: momentum buffers keyed by parameter index, and its groups.
        p.str("optim").dict().str("state").dict().int(0).dict();
        p.str("momentum_buffer").tensor(&[2], &[0.125, -0.125]);
        p.set_items().set_items().str("param_groups").list().dict();
        p.str("lr")
            .float(0.02)
            .str("params")
            .list()
            .int(0)
            .appends();
        p.set_items().appends().set_items();
        p.str("lr_scheduler")
            .dict()
            .str("last_epoch")
            .int(25)
            .set_items();
        p.set_items();
        let ts = format!("{name}_ts");
        p.str(&ts).dict().str("model");
        if name == "best_states" {
            p.get(best_slot);
        } else {
            p.int(12000);
        }
        p.set_items();
    }
    p.set_items();
    if legacy {
        torch_legacy(p)
    } else {
        torch_zip(p)
    }
}

#[test]
fn pth_meshrcnn_checkpoint_loads_best_states_model_without_nested_module_prefixes() {
    // DistributedDataParallel inside DataParallel: two `module.` on every key.
    let keys = [
        "module.module.K",
        "module.module.backbone.stem.0.weight",
        "module.module.mesh_head.stages.0.bottleneck.bias",
    ];
    let best = vec![vec![1.0, 2.0, 3.0], vec![-4.5], vec![0.25, 0.5]];
    let latest = vec![vec![9.0, 9.0, 9.0], vec![9.0], vec![9.0, 9.0]];
    for legacy in [false, true] {
        let bytes = meshrcnn_checkpoint(legacy, &keys, &best, &latest);
        let file = PthFile::from_bytes("voxmesh_R50.pth", bytes).unwrap();
        assert_eq!(file.is_legacy(), legacy);
        assert_eq!(
            file.keys(),
            [
                "K",
                "backbone.stem.0.weight",
                "mesh_head.stages.0.bottleneck.bias"
            ]
        );
        for (key, want) in file.keys().iter().zip(&best) {
            assert_eq!(
                &file.tensor(key).unwrap().data,
                want,
                "{key} (legacy {legacy})"
            );
        }
        println!(
            "legacy {legacy}: best_states.model loaded, keys {:?}",
            file.keys()
        );
    }
    // Some keys wrapped, some not: nothing is stripped (a model may name a submodule `module`).
    let mixed = ["module.K", "backbone.stem.0.weight", "module.module.x"];
    let file = PthFile::from_bytes(
        "mixed.pth",
        meshrcnn_checkpoint(false, &mixed, &best, &latest),
    )
    .unwrap();
    assert_eq!(file.keys(), mixed);
}

#[test]
fn pth_meshrcnn_checkpoint_without_model_names_best_states_model() {
    // meshrcnn's `checkpoint_no_model.pt`: the bookkeeping only.
    let mut p = Pickler::new(false);
    p.dict()
        .str("t")
        .int(12000)
        .str("metrics")
        .dict()
        .set_items();
    p.str("best_states").dict().set_items().set_items();
    let err = PthFile::from_bytes("checkpoint_no_model.pt", torch_zip(p))
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(
        err.contains("checkpoint_no_model.pt")
            && err.contains("\"best_states\"")
            && err.contains("best_states.model"),
        "{err}"
    );
}

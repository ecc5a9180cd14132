//! Resource bombs: small files that claim huge sizes (a 2^63-byte safetensors header, a 1 TB
//! storage, a view of 10^12 elements, a billion-element tuple, deep pickle nesting, overlapping
//! zip members, an ONNX constant of 10^12 elements) are each a typed error naming the file and
//! what is wrong, returned quickly and before any allocation of the claimed size.

use std::io::{Cursor, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use wgcnn_io::onnx::proto::{
    AttributeProto as A, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto, data_type,
};
use wgcnn_io::onnx::{OnnxError, OnnxOptions, load_onnx_bytes};
use wgcnn_io::{IoError, PthFile, SafetensorsFile};

/// Runs `f`, which must fail within a few seconds; returns the error's message.
fn refused<T, E: std::fmt::Display>(what: &str, f: impl FnOnce() -> Result<T, E>) -> String {
    let start = Instant::now();
    let err = match f() {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => e.to_string(),
    };
    let took = start.elapsed();
    println!("{what} ({took:.2?}): {err}");
    assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
    err
}

// ---------------------------------------------------------------------------------------------
// safetensors

fn safetensors(header_len: u64, rest: &[u8]) -> Vec<u8> {
    let mut out = header_len.to_le_bytes().to_vec();
    out.extend(rest);
    out
}

#[test]
fn safetensors_header_length_2_pow_63_or_past_the_file_is_refused() {
    for len in [1u64 << 63, u64::MAX, 1 << 40, 1000] {
        let bytes = safetensors(len, b"{}      ");
        let err = refused(&format!("header length {len}"), || {
            SafetensorsFile::from_bytes("bomb.safetensors", bytes)
        });
        assert!(err.starts_with("bomb.safetensors"), "{err}");
    }
}

#[test]
fn safetensors_tensor_claiming_a_terabyte_over_8_bytes_is_refused() {
    let header = br#"{"a":{"dtype":"F32","shape":[500000,500000],"data_offsets":[0,8]}}"#;
    let mut rest = header.to_vec();
    rest.extend([0u8; 8]);
    let bytes = safetensors(header.len() as u64, &rest);
    let err = refused("1 TB tensor", || {
        SafetensorsFile::from_bytes("tb.safetensors", bytes)
    });
    assert!(err.starts_with("tb.safetensors"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// .pth: a stored zip holding `archive/data.pkl` and the given storages.

fn zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in members {
        zip.start_file(*name, stored).unwrap();
        zip.write_all(data).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn checkpoint(pickle: &[u8], storage: &[u8]) -> Vec<u8> {
    zip(&[("archive/data.pkl", pickle), ("archive/data/0", storage)])
}

fn pstr(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

/// `LONG1` of any i64 (pickle's compact little-endian integers).
fn pint(out: &mut Vec<u8>, v: i64) {
    let bytes = v.to_le_bytes();
    out.extend([0x8a, 8]);
    out.extend(bytes);
}

/// `{"w": _rebuild_tensor_v2(storage "0" of `numel` floats, 0, size, stride)}`.
fn state_dict(numel: i64, size: &[i64], stride: &[i64]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b'}'];
    pstr(&mut p, "w");
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    pstr(&mut p, "storage");
    p.extend(b"ctorch\nFloatStorage\n");
    pstr(&mut p, "0");
    pstr(&mut p, "cpu");
    pint(&mut p, numel);
    p.extend(b"tQ");
    pint(&mut p, 0);
    p.push(b'(');
    for &d in size {
        pint(&mut p, d);
    }
    p.extend(b"t(");
    for &s in stride {
        pint(&mut p, s);
    }
    p.extend(b"t\x89}tRs.");
    p
}

fn open_pth(bytes: Vec<u8>) -> Result<PthFile, IoError> {
    PthFile::from_bytes("bomb.pth", bytes)
}

#[test]
fn pth_small_valid_checkpoint_of_this_shape_loads() {
    // The builders below are right: the same file with honest sizes opens and reads.
    let file = open_pth(checkpoint(&state_dict(2, &[2], &[1]), &[0; 8])).expect("valid");
    assert_eq!(file.tensor("w").unwrap().data, vec![0.0, 0.0]);
}

#[test]
fn pth_storage_claiming_a_terabyte_is_refused() {
    const TB_OF_F32: i64 = 250_000_000_000;
    let bytes = checkpoint(&state_dict(TB_OF_F32, &[2], &[1]), &[0; 8]);
    let err = refused("1 TB storage", || open_pth(bytes));
    assert!(
        err.starts_with("bomb.pth") && err.contains("250000000000"),
        "{err}"
    );
}

#[test]
fn pth_view_of_10_pow_12_elements_over_a_small_storage_is_refused() {
    // Stride 0 views repeat elements legally, but not a million-fold over 2 elements.
    let bytes = checkpoint(&state_dict(2, &[1_000_000, 1_000_000], &[0, 0]), &[0; 8]);
    let err = refused("10^12-element view", || open_pth(bytes));
    assert!(err.contains("implausibly large"), "{err}");
    let bytes = checkpoint(&state_dict(2, &[i64::MAX, 4], &[1, 1]), &[0; 8]);
    refused("overflowing view", || open_pth(bytes));
}

#[test]
fn pth_legacy_storage_claiming_a_terabyte_is_refused() {
    let mut legacy = vec![
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ];
    legacy.extend([0x80, 0x02, b'M', 0xe9, 0x03, b'.']);
    legacy.extend([0x80, 0x02, b'}', b'.']);
    legacy.extend(state_dict(2, &[2], &[1]));
    legacy.extend([0x80, 0x02, b']', b'(']);
    pstr(&mut legacy, "0");
    legacy.extend([b'e', b'.']);
    legacy.extend(250_000_000_000u64.to_le_bytes());
    legacy.extend([0; 8]);
    let err = refused("legacy 1 TB storage", || open_pth(legacy));
    assert!(err.contains("storage 0"), "{err}");
}

#[test]
fn pickle_nested_a_million_deep_is_an_error_without_recursion() {
    const DEPTH: usize = 1_000_000;
    // A million nested tuples: MARK x N, then TUPLE x N.
    let mut tuples = vec![0x80, 2];
    tuples.extend(std::iter::repeat_n(b'(', DEPTH));
    tuples.extend(std::iter::repeat_n(b't', DEPTH));
    tuples.push(b'.');
    let err = refused("nested tuples", || open_pth(checkpoint(&tuples, &[])));
    assert!(err.contains("tuple"), "{err}");
    // A million nested lists: EMPTY_LIST x N, then APPEND x (N - 1).
    let mut lists = vec![0x80, 2];
    lists.extend(std::iter::repeat_n(b']', DEPTH));
    lists.extend(std::iter::repeat_n(b'a', DEPTH - 1));
    lists.push(b'.');
    let err = refused("nested lists", || open_pth(checkpoint(&lists, &[])));
    assert!(err.contains("list"), "{err}");
}

#[test]
fn pickle_billion_element_claims_are_refused_and_million_element_tuples_stay_cheap() {
    // BINBYTES8 / BINUNICODE8 / LONG4 claiming a billion-plus bytes that are not there.
    for op in [0x8e, 0x8d, 0x8b] {
        let mut p = vec![0x80, 4, op];
        if op == 0x8b {
            p.extend(1_000_000_000u32.to_le_bytes());
        } else {
            p.extend(1_000_000_000u64.to_le_bytes());
        }
        p.push(b'.');
        let err = refused(&format!("opcode {op:#x}"), || open_pth(checkpoint(&p, &[])));
        assert!(err.contains("end of data"), "{err}");
    }
    // A tensor of a billion elements over 2 stored ones.
    let bytes = checkpoint(&state_dict(2, &[1_000_000_000], &[1]), &[0; 8]);
    refused("billion-element tensor", || open_pth(bytes));
    // A million-element tuple from one memoized value (2 bytes each): bounded by the file's
    // size, and read in linear time.
    let mut p = vec![0x80, 2, b'(', b'N', b'q', 0];
    for _ in 0..1_000_000 {
        p.extend([b'h', 0]);
    }
    p.extend(b"t.");
    let err = refused("million-element tuple", || open_pth(checkpoint(&p, &[])));
    assert!(err.contains("tuple"), "{err}");
}

/// The central-directory record of member `name` in a zip.
fn central_record(zip: &[u8], name: &str) -> usize {
    (0..zip.len() - 46)
        .find(|&i| {
            zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] && {
                let n = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
                zip.get(i + 46..i + 46 + n) == Some(name.as_bytes())
            }
        })
        .expect("central record")
}

#[test]
fn zip_with_overlapping_members_is_refused_by_name() {
    let pickle = state_dict(2, &[2], &[1]);
    let mut bytes = checkpoint(&pickle, &[0; 8]);
    // Point the storage's directory entry at the pickle's local header: both members now
    // claim the same bytes (as overlapping-member zip bombs do).
    let at = central_record(&bytes, "archive/data/0");
    bytes[at + 42..at + 46].copy_from_slice(&0u32.to_le_bytes());
    let err = refused("overlapping members", || open_pth(bytes));
    assert!(
        err.contains("overlaps") && err.contains("archive/data.pkl"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// ONNX

fn onnx(input: &[i64], nodes: Vec<NodeProto>, inits: Vec<TensorProto>) -> Vec<u8> {
    let output = nodes.last().unwrap().output[0].clone();
    let dims: Vec<Option<i64>> = input.iter().map(|&d| Some(d)).collect();
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            name: "bomb".into(),
            node: nodes,
            initializer: inits,
            input: vec![ValueInfoProto::tensor("x", data_type::FLOAT, &dims)],
            output: vec![ValueInfoProto {
                name: output,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
    .to_bytes()
}

fn import(bytes: &[u8]) -> Result<wgcnn_io::onnx::OnnxModel, OnnxError> {
    load_onnx_bytes(
        bytes,
        Path::new("bomb.onnx"),
        Path::new("/nonexistent"),
        &OnnxOptions::default(),
    )
}

#[test]
fn onnx_constant_reshaped_to_10_pow_12_elements_is_refused_before_folding() {
    let value = A::tensor("value", TensorProto::float_raw("v", &[1], &[1.0]));
    let bytes = onnx(
        &[1, 4],
        vec![
            NodeProto::new("ConstantOfShape", "big", &["shape"], &["big"], vec![value]),
            NodeProto::new("Reshape", "flat", &["big", "target"], &["flat"], vec![]),
            NodeProto::new("Add", "y", &["x", "flat"], &["y"], vec![]),
        ],
        vec![
            TensorProto::int64s("shape", &[2], &[1_000_000, 1_000_000]),
            TensorProto::int64s("target", &[1], &[1_000_000_000_000]),
        ],
    );
    let err = refused("10^12 constant", || import(&bytes));
    assert!(
        err.starts_with("bomb.onnx") && err.contains("too large"),
        "{err}"
    );
}

#[test]
fn onnx_initializer_claiming_10_pow_12_elements_over_a_few_bytes_is_refused() {
    let mut t = TensorProto::float_raw("w", &[1_000_000, 1_000_000], &[1.0, 2.0]);
    t.name = "w".into();
    let bytes = onnx(
        &[1, 4],
        vec![NodeProto::new("Add", "y", &["x", "w"], &["y"], vec![])],
        vec![t],
    );
    let err = refused("10^12 initializer", || import(&bytes));
    assert!(err.starts_with("bomb.onnx"), "{err}");
}
